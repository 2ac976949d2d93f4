"""tools/dist_train.sh and dist_test.sh with 2 processes (torchrun, gloo on CPU), and the
Slurm scripts' command lines (with a stand-in srun)."""
import stat
import sys

import torch

from tools_testing import (TOOLS, cls_config, read_metrics, run, run_on_a_free_port,
                           tool_env)
from tools_testing import imagenet64, toy_root  # noqa: F401 (fixtures)

EXTRA = '''
custom_imports = dict(imports=['mmtransnext', 'rank_state_hook'], allow_failed_imports=False)
custom_hooks = [dict(type='RankStateHook')]
'''


def test_dist_train_two_processes(tmp_path, imagenet64):
    cfg = cls_config(tmp_path, imagenet64, deterministic=True, name='cls_dist.py', extra=EXTRA)
    env = tool_env(threads=1, PYTHON=sys.executable)
    work = tmp_path / 'work'
    run_on_a_free_port(['bash', TOOLS / 'dist_train.sh', cfg, 2, '--work-dir', work,
                        '--cfg-options', 'train_cfg.max_iters=2'], env)
    states = [torch.load(work / f'rank{r}_state.pth', weights_only=True) for r in (0, 1)]
    assert [s['world_size'] for s in states] == [2, 2]
    assert [s['rank'] for s in states] == [0, 1]
    a, b = (s['state_dict'] for s in states)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f'ranks differ in {key}'
    assert (work / 'iter_2.pth').is_file()

    # dist_test.sh on the checkpoint: both ranks evaluate, rank 0 reports top-1
    run_on_a_free_port(['bash', TOOLS / 'dist_test.sh', cfg, work / 'iter_2.pth', 2,
                        '--work-dir', tmp_path / 'test'], env)
    assert 0.0 <= read_metrics(tmp_path / 'test')['accuracy/top1'] <= 100.0


def test_slurm_scripts(tmp_path):
    fake = tmp_path / 'bin' / 'srun'
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "SRUN $*"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = tool_env(PATH=f'{fake.parent}:/usr/bin:/bin', GPUS='16')
    out = run(['bash', TOOLS / 'slurm_train.sh', 'part', 'job', 'cfg.py', 'wd', '--amp'],
              env=env).stdout
    line = next(l for l in out.splitlines() if l.startswith('SRUN'))
    assert '-p part' in line and '--ntasks=16' in line and '--gres=gpu:8' in line
    assert 'tools/train.py cfg.py --work-dir=wd --launcher=slurm --amp' in line
    out = run(['bash', TOOLS / 'slurm_test.sh', 'part', 'job', 'cfg.py', 'ck.pth',
               '--aug-test'], env=env).stdout
    line = next(l for l in out.splitlines() if l.startswith('SRUN'))
    assert 'tools/test.py cfg.py ck.pth --launcher=slurm --aug-test' in line


def test_read_metrics_survives_two_ranks_dumping_one_file(tmp_path):
    """Both ranks of dist_test.sh dump the same metrics to one json log opened with 'w':
    a shorter dump over a longer one leaves the longer one's tail (seen in this test)."""
    (tmp_path / '20261122_050419').mkdir()
    (tmp_path / '20261122_050419' / '20261122_050419.json').write_text(
        '{"accuracy/top1": 75.0, "accuracy/top5": 100.0, "time": 0.199082612991333}66}\n')
    assert read_metrics(tmp_path) == {'accuracy/top1': 75.0, 'accuracy/top5': 100.0,
                                      'time': 0.199082612991333}
