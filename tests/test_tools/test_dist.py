"""tools/dist_train.sh and dist_test.sh with 2 processes (torchrun, gloo on CPU), and the
Slurm scripts' command lines (with a stand-in srun), and slurm_train.sh requeueing a
preempted job."""
import stat
import sys

import torch

from tools_testing import (TOOLS, cls_config, read_metrics, run, run_on_a_free_port,
                           tool_env)
from mmtransnext.engine.preemption_hook import REQUEUE_EXIT_CODE

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


def test_slurm_train_requeues_a_preempted_job(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, body in (('srun', f'echo "SRUN $*"; exit {REQUEUE_EXIT_CODE}'),
                       ('scontrol', 'echo "SCONTROL $*"')):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\n{body}\n')
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    env = tool_env(PATH=f'{bin_dir}:/usr/bin:/bin', SLURM_JOB_ID='123')
    cmd = ['bash', TOOLS / 'slurm_train.sh', 'part', 'job', 'cfg.py', 'wd']
    proc = run(cmd, env=env, expect_ok=False)
    assert proc.returncode == REQUEUE_EXIT_CODE
    assert 'SCONTROL requeue 123' in proc.stdout
    assert '--resume' not in next(l for l in proc.stdout.splitlines() if l.startswith('SRUN'))
    proc = run(cmd, env={**env, 'SLURM_RESTART_COUNT': '1'}, expect_ok=False)
    line = next(l for l in proc.stdout.splitlines() if l.startswith('SRUN'))
    assert line.endswith('--launcher=slurm --resume')
