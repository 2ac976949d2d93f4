"""mmtransnext.compat and what it serves, on whichever stack runs the suite (make test: today's
pins; make test-oldest: torch 2.0.1 / mmengine 0.7.3): the version facts, the op
registrations on both APIs, the weights_only allow-list on both routes, and a training
step's gradients against a float64 reference (the check that catches a silently wrong
backward such as torch 2.0's GELU on a strided gradient)."""
import io
import os
import pickle

import pytest
import torch
import torch.nn as nn

from mmtransnext import compat
from mmtransnext.models import TransNeXt
from mmtransnext.ops import op_registration
from mmtransnext.checkpoint import safe_load
from mmtransnext.checkpoint.allowlist_unpickler import allowed_by_name, pickle_module


def test_version_tuple():
    assert compat.version_tuple('2.0.1+cu117') == (2, 0, 1)
    assert compat.version_tuple('2.12.0a0+git1234') == (2, 12, 0)
    assert compat.version_tuple('2.1.0.dev20230101') == (2, 1, 0)
    assert compat.TORCH_VERSION == compat.version_tuple(torch.__version__)
    assert compat.torch_at_least(2, 0) and not compat.torch_at_least(99)


def test_autocast_dtype_per_device():
    assert compat.autocast_dtype('cpu') is None
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert compat.autocast_dtype('cpu') == torch.bfloat16
        assert compat.autocast_dtype('cuda') is None
    assert compat.autocast_dtype('cpu') is None


def test_tracing_predicates_outside_tracing():
    assert compat.is_compiling() is False
    assert compat.is_fx_tracing() is False


def test_fx_tracing_seen_inside_symbolic_trace():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(compat.is_fx_tracing())
            return x + 1

    torch.fx.symbolic_trace(Probe())
    assert seen == [True]


def test_check_raises_with_the_message():
    compat.check(True, lambda: 'unused')
    with pytest.raises(RuntimeError, match='the message'):
        compat.check(False, lambda: 'the message')


# -- op registration: the torch >= 2.4 API and the Library.impl route -----------------------

_TEST_LIBS = []


def _define_scale_op(namespace):
    """A tiny custom op ``namespace::scale(x, s) = x * s`` with a CPU kernel only."""
    lib = torch.library.Library(namespace, 'DEF')
    lib.define('scale(Tensor x, float s) -> Tensor')
    lib.impl('scale', lambda x, s: x * s, 'CPU')
    _TEST_LIBS.append(lib)
    return getattr(torch.ops, namespace).scale


@pytest.mark.parametrize('legacy', [False, True] if compat.HAS_OP_REGISTRATION_API else [True])
def test_op_registration_gives_fake_kernel_and_gradient(monkeypatch, legacy):
    """Both routes of op_registration: a meta kernel and an exact derivative. The Library.impl
    route (torch < 2.4) runs on every torch, so today's stack checks it too."""
    if legacy:
        monkeypatch.setattr(op_registration, 'HAS_OP_REGISTRATION_API', False)
    namespace = f'mmtn_compat_{"legacy" if legacy else "api"}'
    scale = _define_scale_op(namespace)
    op_registration.register_fake(f'{namespace}::scale')(lambda x, s: torch.empty_like(x))

    def setup_context(ctx, inputs, output):
        ctx.s = inputs[1]

    op_registration.register_autograd(f'{namespace}::scale',
                                      lambda ctx, grad: (grad * ctx.s, None), setup_context)
    meta = scale(torch.empty(3, 4, device='meta'), 2.0)
    assert meta.device.type == 'meta' and meta.shape == (3, 4)
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    y = scale(x, 3.0)
    assert torch.equal(y, x.detach() * 3)
    y.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 3.0))
    assert torch.autograd.gradcheck(lambda t: scale(t, 0.5), (x,))


# -- weights_only allow-list: add_safe_globals (torch >= 2.4) and the allow-list unpickler --

class _Exploit:
    def __reduce__(self):
        return os.system, ('echo pwned',)


def test_allowlist_unpickler_refuses_unlisted_globals(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': _Exploit()}, path)
    module = pickle_module(allowed_by_name(safe_load.mmengine_checkpoint_globals()))
    with pytest.raises(pickle.UnpicklingError, match='Unsupported global: GLOBAL posix.system'):
        torch.load(path, pickle_module=module)
    with pytest.raises(safe_load.UnsafeCheckpointError, match='posix.system'):
        safe_load.load_checkpoint_file(str(path))


def test_allowlist_unpickler_reads_mmengine_contents(tmp_path):
    """What an mmengine checkpoint holds (HistoryBuffer with numpy arrays and its statistics
    methods, numpy scalars, bf16 tensors, RNG tuples) reads back through the unpickler route
    on every torch, and through load_checkpoint_file's route of this torch."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    buffer = HistoryBuffer()
    for value in (1.0, 2.0, 4.0):
        buffer.update(value)
    state = {'meta': {'iter': 3, 'metric': np.float64(0.5), 'classes': ('a', 'b')},
             'message_hub': {'log_scalars': {'loss': buffer}},
             'state_dict': {'w': torch.randn(2, 2, dtype=torch.bfloat16)},
             'rng': torch.get_rng_state(), 'set': {1, 2}}
    path = tmp_path / 'ckpt.pth'
    torch.save(state, path)
    module = pickle_module(allowed_by_name(safe_load.mmengine_checkpoint_globals()))
    for loaded in (torch.load(path, pickle_module=module),
                   safe_load.load_checkpoint_file(str(path))):
        assert loaded['meta'] == state['meta']
        assert loaded['message_hub']['log_scalars']['loss'].mean() == buffer.mean()
        assert torch.equal(loaded['state_dict']['w'], state['state_dict']['w'])
        assert torch.equal(loaded['rng'], state['rng']) and loaded['set'] == {1, 2}


def test_allowlist_unpickler_refuses_getattr_beyond_history_buffer():
    payload = io.BytesIO()
    pickle.Pickler(payload, protocol=2).dump(getattr)  # builtins.getattr, mapped
    module = pickle_module(allowed_by_name(safe_load.mmengine_checkpoint_globals()))
    getattr_like = module.load(io.BytesIO(payload.getvalue()))
    with pytest.raises(pickle.UnpicklingError, match='not allowed'):
        getattr_like(os, 'system')


# -- gradients against float64 --------------------------------------------------------------

def _training_step_grads(dtype, seed=0):
    torch.manual_seed(seed)
    backbone = TransNeXt(arch='micro', img_size=64, drop_path_rate=0.0)  # no random masks
    head = nn.Linear(backbone.embed_dims[-1], 5)
    backbone.to(dtype), head.to(dtype)
    x = torch.randn(2, 3, 64, 64).to(dtype)
    target = torch.tensor([1, 3])
    feats = backbone(x)
    logits = head(feats[-1].mean((2, 3)))
    loss = nn.functional.cross_entropy(logits, target) + sum(f.square().mean() for f in feats)
    loss.backward()
    return {name: p.grad.double() for name, p in
            list(backbone.named_parameters()) + list(head.named_parameters(prefix='head'))
            if p.grad is not None}


def test_training_step_gradients_match_float64():
    """Every parameter's gradient of a training step (backbone + a toy head) in fp32 against
    the same step in float64: a silently wrong backward (torch 2.0's GELU on a strided
    gradient gave 1e27 or NaN here) fails on the stack that has it."""
    fp32, fp64 = _training_step_grads(torch.float32), _training_step_grads(torch.float64)
    assert fp32.keys() == fp64.keys() and len(fp32) > 100
    scale = max(g.abs().max().item() for g in fp64.values())
    assert 1e-3 < scale < 1e3
    for name, reference in fp64.items():
        error = (fp32[name] - reference).abs().max().item()
        assert error <= 1e-4 * scale + 1e-3 * reference.abs().max().item(), (name, error)


def test_gelu_backward_with_a_strided_gradient_matches_float64():
    """The exact failure of torch 2.0.1 (CPU GELU backward reads a transposed gradient
    wrongly), on the model's GELU: right on every stack."""
    from mmtransnext.models.layers.gelu import GELU
    x = torch.randn(2, 16, 8, requires_grad=True)
    grad = torch.randn(2, 8, 16).transpose(1, 2)
    got, = torch.autograd.grad(GELU()(x), x, grad)
    x64 = x.detach().double().requires_grad_()
    want, = torch.autograd.grad(nn.functional.gelu(x64), x64, grad.double().contiguous())
    assert (got.double() - want).abs().max() < 1e-5
