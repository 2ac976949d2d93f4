"""SafeCheckpointHook keeps the contract of mmengine's CheckpointHook: a plain mmengine
Runner (not our tools) resumes, from any working directory, a work dir that
SafeCheckpointHook wrote, and a short run leaves the same files, with the same names, and
the same ``last_checkpoint`` as one with mmengine's own hook."""
import os
import re

import pytest
from mmengine.runner import Runner

import mmtransnext  # noqa: F401 (registers SafeCheckpointHook and the file backend)
from runner_testing import plain_runner


def test_plain_mmengine_resumes_from_another_directory(tmp_path, monkeypatch):
    (tmp_path / 'here').mkdir()
    (tmp_path / 'elsewhere').mkdir()
    monkeypatch.chdir(tmp_path / 'here')
    plain_runner('work', max_iters=2).train()  # a relative work dir
    work = tmp_path / 'here' / 'work'
    assert (work / 'iter_2.pth').is_file()

    monkeypatch.chdir(tmp_path / 'elsewhere')
    resumed_from = []
    resume = Runner.resume

    def spy(self, filename, *args, **kwargs):
        resumed_from.append(filename)
        return resume(self, filename, *args, **kwargs)

    monkeypatch.setattr(Runner, 'resume', spy)
    runner = plain_runner(work, hook='CheckpointHook', max_iters=4, resume=True)
    runner.train()
    assert resumed_from == [str(work / 'iter_2.pth')]
    assert runner.iter == 4 and (work / 'iter_4.pth').is_file()


@pytest.mark.parametrize('hook_kw', [dict(), dict(max_keep_ckpts=1),
                                     dict(max_keep_ckpts=1, save_best='mean', rule='greater')])
def test_same_files_and_last_checkpoint_as_mmengine(tmp_path, hook_kw):
    written = {}
    for hook in ('CheckpointHook', 'SafeCheckpointHook'):
        work = tmp_path / hook
        plain_runner(work, hook=hook, **hook_kw).train()
        files = sorted(p.name for p in work.iterdir()  # not the <timestamp>.py config dump
                       if p.is_file() and not re.match(r'\d{8}_\d{6}', p.name))
        last = (work / 'last_checkpoint').read_text()
        written[hook] = files, last.replace(str(work), '<work_dir>')
        assert os.path.isabs(last) and os.path.isfile(last)
    assert written['SafeCheckpointHook'] == written['CheckpointHook']
