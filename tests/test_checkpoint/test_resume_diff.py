"""--resume names what changed against the config saved in the checkpoint, and which
changes the restored optimizer / scheduler state overrides; the saved text is parsed,
never executed."""
import torch
from mmengine.config import Config

import mmtransnext.checkpoint.resume_diff as resume_diff
from mmtransnext.checkpoint.resume_diff import parse_saved_config, report_config_changes
from tools_testing import CONFIGS, load_tool

UPERNET = str(CONFIGS / 'upernet/upernet_transnext_tiny.py')
BASE = dict(optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01, betas=(0.9, 0.999))),
            param_scheduler=[dict(type='LinearLR', begin=0, end=2)],
            train_cfg=dict(max_iters=4), work_dir='/old/place', load_from=None)


def _logged(monkeypatch):
    logged = []
    monkeypatch.setattr(resume_diff, 'print_log', lambda msg, **kw: logged.append(msg))
    return logged


def test_differences_and_what_the_state_overrides(monkeypatch):
    logged = _logged(monkeypatch)
    meta = dict(cfg=Config(BASE).pretty_text)
    current = Config(BASE)
    current.optim_wrapper.optimizer.lr = 0.001
    current.param_scheduler[0].end = 3
    current.train_cfg.max_iters = 8
    current.work_dir = '/new/place'  # a moved work dir is no difference
    lines = report_config_changes(meta, current, 'w/iter_2.pth')
    assert lines == [
        "  optim_wrapper.optimizer.lr: 0.01 -> 0.001  [OVERRIDDEN: the optimizer state "
        "restored from the checkpoint keeps the old value]",
        "  param_scheduler.0.end: 2 -> 3  [OVERRIDDEN: the scheduler state restored from "
        "the checkpoint keeps the old schedule]",
        '  train_cfg.max_iters: 4 -> 8']
    assert 'differs from the one saved in w/iter_2.pth' in logged[0]
    assert ('2 of these (optim_wrapper.optimizer.lr, param_scheduler.0.end) are overridden'
            in logged[0] and 'load_from=<checkpoint> without --resume' in logged[0])
    assert report_config_changes(meta, Config(BASE), 'w/iter_2.pth') == []


def test_saved_text_is_never_executed(tmp_path):
    marker = tmp_path / 'ran'
    text = f"a = dict(b=1)\nc = __import__('pathlib').Path({str(marker)!r}).touch()\n"
    saved = parse_saved_config(text)
    assert saved['a'] == dict(b=1) and not marker.exists()
    assert parse_saved_config('not python (') is None


def test_train_py_resume_reports_the_changed_lr(tmp_path, monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')
    logged = _logged(monkeypatch)
    train_py = load_tool('train')
    work = tmp_path / 'work'
    args = [UPERNET, '--work-dir', str(work)]
    saved = train_py.build_cfg(train_py.parse_args(args))
    work.mkdir()
    torch.save(dict(meta=dict(epoch=0, iter=2, cfg=saved.pretty_text), state_dict={}),
               work / 'iter_2.pth')
    train_py.build_cfg(train_py.parse_args(args + ['--resume']))
    assert logged == []  # the same config: nothing to report
    train_py.build_cfg(train_py.parse_args(
        args + ['--resume', '--cfg-options', 'optim_wrapper.optimizer.lr=0.001']))
    assert len(logged) == 1
    assert 'optim_wrapper.optimizer.lr: 6e-05 -> 0.001  [OVERRIDDEN' in logged[0]
