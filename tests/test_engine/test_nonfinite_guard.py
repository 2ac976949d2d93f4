"""A NaN loss never reaches a checkpoint: NonFiniteGuardHook stops the run (or skips the
step) before the optimizer applies it, SafeCheckpointHook refuses to write non-finite
weights over the rotation, and tools/train.py switches the guard on by default."""
import pytest
import torch
from mmengine.config import Config

from mmtransnext.engine.nonfinite_guard_hook import NonFiniteGuardHook, use_nonfinite_guard
from mmtransnext.checkpoint.safe_load import torch_load_allowed
from runner_testing import DropModel, plain_runner
from tools_testing import CONFIGS, load_tool

NAN = float('nan')


class NaNAt(DropModel):
    """The loss of the training steps in ``bad`` (1-based) is NaN; with ``grad``, the loss
    stays finite and the gradient of fc.bias is NaN (sqrt'(0) * 0)."""

    def __init__(self, *bad, grad=False):
        super().__init__()
        self.bad, self.steps, self.grad = set(bad), 0, grad

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = super().forward(inputs, data_samples, mode)
        if mode == 'loss':
            self.steps += 1
            if self.steps in self.bad and self.grad:
                out = dict(loss=out['loss'] + torch.sqrt(self.fc.bias.abs() * 0).sum())
            elif self.steps in self.bad:
                out = dict(loss=out['loss'] * NAN)
        return out


def _run(work, *bad, guard=None, grad=False, clip_grad=None, **hook_kw):
    hooks = [guard] if guard else []
    runner = plain_runner(work, model=NaNAt(*bad, grad=grad), interval=1, max_keep_ckpts=1,
                          custom_hooks=hooks, clip_grad=clip_grad, **hook_kw)
    return runner


def _files(work):
    """The checkpoints and last_checkpoint in ``work``."""
    return sorted(p.name for p in work.iterdir()
                  if p.name.startswith('iter_') or p.name == 'last_checkpoint')


def _finite(path):
    state = torch_load_allowed(path)['state_dict']
    return all(torch.isfinite(t).all() for t in state.values())


def test_guard_stops_before_the_step(tmp_path):
    runner = _run(tmp_path, 3, guard=dict(type='NonFiniteGuardHook'))
    with pytest.raises(FloatingPointError, match=r'iteration 3: the loss is not finite '
                       r'\(loss=nan\).*--nonfinite-guard skip'):
        runner.train()
    assert not any(torch.isnan(p).any() for p in runner.model.parameters())
    assert _files(tmp_path) == ['iter_2.pth', 'last_checkpoint']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_2.pth')
    assert _finite(tmp_path / 'iter_2.pth')


def test_guard_skips_up_to_max_skips(tmp_path):
    guard = dict(type='NonFiniteGuardHook', action='skip', max_skips=1)
    runner = _run(tmp_path / 'once', 3, guard=guard)
    runner.train()  # the NaN step is dropped, the run ends
    assert _files(tmp_path / 'once') == ['iter_4.pth', 'last_checkpoint']
    assert _finite(tmp_path / 'once' / 'iter_4.pth')
    with pytest.raises(FloatingPointError, match=r'iteration 3: .*after 1 skipped step'):
        _run(tmp_path / 'twice', 2, 3, guard=guard).train()


def test_guard_checks_the_clipped_gradient_norm(tmp_path):
    """A finite loss with a NaN gradient: with clip_grad its norm is checked for free."""
    clip = dict(max_norm=10.0)
    runner = _run(tmp_path / 'stop', 3, grad=True, clip_grad=clip,
                  guard=dict(type='NonFiniteGuardHook'))
    with pytest.raises(FloatingPointError, match=r'iteration 3: the gradient norm is not '
                       r'finite \(grad_norm=nan\)'):
        runner.train()
    assert not any(torch.isnan(p).any() for p in runner.model.parameters())
    assert _files(tmp_path / 'stop') == ['iter_2.pth', 'last_checkpoint']
    guard = dict(type='NonFiniteGuardHook', action='skip', max_skips=1)
    _run(tmp_path / 'skip', 3, grad=True, clip_grad=clip, guard=guard).train()
    assert _finite(tmp_path / 'skip' / 'iter_4.pth')


def test_checkpoint_hook_never_writes_nonfinite_weights(tmp_path):
    """Without the guard the NaN step reaches the weights; the rotation (max_keep_ckpts=1)
    and last_checkpoint keep the finite iteration 2."""
    with pytest.raises(FloatingPointError, match=r'iter_3.pth was not written: \d+ weight '
                       r'tensor\(s\) hold NaN or Inf \(fc.weight, fc.bias\)'):
        _run(tmp_path / 'w', 3).train()
    assert _files(tmp_path / 'w') == ['iter_2.pth', 'last_checkpoint']
    assert (tmp_path / 'w' / 'last_checkpoint').read_text().endswith('iter_2.pth')
    assert _finite(tmp_path / 'w' / 'iter_2.pth')
    _run(tmp_path / 'off', 3, check_finite=False).train()  # switched off: written
    assert not _finite(tmp_path / 'off' / 'iter_4.pth')


def test_settings():
    def hooks(setting=None, *args):
        cfg = Config(dict(custom_hooks=[dict(type='RNGStateHook')]))
        if setting is not None:
            cfg.nonfinite_guard = setting
        use_nonfinite_guard(cfg, *args)
        return [h for h in cfg.custom_hooks if h['type'] == 'NonFiniteGuardHook']

    assert hooks() == [dict(type='NonFiniteGuardHook')]
    assert hooks('off') == [] and hooks(False) == [] and hooks(None, 'off') == []
    assert hooks(dict(action='skip', max_skips=3)) == [
        dict(type='NonFiniteGuardHook', action='skip', max_skips=3)]
    assert hooks('off', 'skip', 5) == [dict(type='NonFiniteGuardHook', action='skip',
                                            max_skips=5)]
    with pytest.raises(ValueError, match='action must be one of'):
        hooks('ignore')
    with pytest.raises(ValueError, match='max_skips must be an int >= 0'):
        NonFiniteGuardHook('skip', max_skips=-1)


def test_train_py_guards_by_default(tmp_path):
    train_py = load_tool('train')
    config = str(CONFIGS / 'transnext/transnext_tiny.py')

    def guard(*extra):
        cfg = train_py.build_cfg(train_py.parse_args([config, '--work-dir', str(tmp_path),
                                                      *extra]))
        return [h for h in cfg.custom_hooks if h['type'] == 'NonFiniteGuardHook']

    assert guard() == [dict(type='NonFiniteGuardHook')]
    assert guard('--nonfinite-guard', 'off') == []
    assert guard('--nonfinite-guard', 'skip', '--nonfinite-skips', '2') == [
        dict(type='NonFiniteGuardHook', action='skip', max_skips=2)]
