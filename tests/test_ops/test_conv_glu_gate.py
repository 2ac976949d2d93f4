"""ConvGLU's fused gate op (torch.ops.mmtransnext.conv_glu_gate): GELU(dwconv3x3(gate)) *
value as torch computes it, values and gradients, on whole maps and row bands; deterministic;
bad inputs named alike by the C++ op, the checks and the fake kernel."""
import pytest
import torch
import torch.nn.functional as F

from mmtransnext.ops import conv_glu_gate as cg
from mmtransnext.ops.checks import check_conv_glu_gate

from ops_testing import requires_ext

pytestmark = requires_ext


def _inputs(B=2, H=5, W=7, C=19, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = ((B, H * W, C), (B, H * W, C), (C, 1, 3, 3), (C,))
    return [torch.randn(*s, generator=g, dtype=dtype).requires_grad_() for s in shapes]


def _torch_gate(gate, value, weight, bias, H, W):
    B, _, C = gate.shape
    image = gate.transpose(1, 2).reshape(B, C, H, W)
    conv = F.conv2d(image, weight, bias, padding=1, groups=C)
    # GELU on contiguous tokens: torch 2.0's CPU GELU backward is wrong for strided gradients
    return F.gelu(conv.flatten(2).transpose(1, 2).contiguous()) * value


@pytest.mark.parametrize('B, H, W, C', [(2, 5, 7, 19), (1, 1, 1, 8), (1, 3, 1, 3),
                                        (1, 16, 16, 64)])
def test_values_and_gradients_match_torch(B, H, W, C):
    args = _inputs(B, H, W, C)
    assert cg.usable(args[0])
    out = cg.conv_glu_gate(*args, H, W)
    ref = _torch_gate(*args, H, W)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn(ref.shape, dtype=ref.dtype)
    for g, r in zip(torch.autograd.grad(out, args, grad), torch.autograd.grad(ref, args, grad)):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)


# C = 40: the float rows' generic loop; C = 48: their 16-channel register path
@pytest.mark.parametrize('C', [40, 48])
def test_float32_within_the_erf_approximation(C):
    args = _inputs(1, 16, 16, C, dtype=torch.float32)
    out = cg.conv_glu_gate(*args, 16, 16)
    ref = _torch_gate(*args, 16, 16)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn(ref.shape)
    for g, r in zip(torch.autograd.grad(out, args, grad), torch.autograd.grad(ref, args, grad)):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


def test_gradcheck():
    torch.autograd.gradcheck(lambda *a: cg.conv_glu_gate(*a, 3, 4), _inputs(1, 3, 4, 5))


@pytest.mark.parametrize('dtype,C', [(torch.float32, 11), (torch.float32, 32),
                                     (torch.float64, 11)])
def test_band_of_rows_equals_those_rows_of_the_whole_map(dtype, C):
    gate, value, weight, bias = [t.detach() for t in _inputs(2, 9, 6, C, dtype=dtype)]
    whole = cg.conv_glu_gate(gate, value, weight, bias, 9, 6)
    # rows 3..6 of the map, computed from its rows 2..7 (one halo row each side)
    band = cg.conv_glu_gate(gate[:, 2 * 6:8 * 6], value[:, 3 * 6:7 * 6], weight, bias, 6, 6,
                            1, 5)
    assert torch.equal(band, whole[:, 3 * 6:7 * 6])


def test_backward_is_deterministic_across_thread_counts():
    args = _inputs(2, 32, 24, 48, dtype=torch.float32)
    grad = torch.randn(2, 32 * 24, 48)
    first = torch.autograd.grad(cg.conv_glu_gate(*args, 32, 24), args, grad)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        again = torch.autograd.grad(cg.conv_glu_gate(*args, 32, 24), args, grad)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(first, again):
        assert torch.equal(a, b)


def test_backward_of_a_band_is_refused():
    gate, value, weight, bias = _inputs(1, 4, 3, 5)
    out = cg.conv_glu_gate(gate, value[:, :6], weight, bias, 4, 3, 1, 3)
    with pytest.raises(RuntimeError, match='backward needs the whole map'):
        out.sum().backward()


BAD = [
    ('dtype', lambda a: ([t.half() for t in a[:4]], a[4:]), r'expected float32 or float64'),
    ('mixed', lambda a: ([a[0], a[1].float(), *a[2:4]], a[4:]), r'mixed dtypes'),
    ('rows', lambda a: (a[:4], (5, 7, 3, 3)), r'output rows \[3, 3\) must lie in \[0, 5\)'),
    ('tokens', lambda a: (a[:4], (4, 7, 0, 4)), r'gate must be \[B, height \* width, C\]'),
    ('value', lambda a: ([a[0], a[1][:, :7], *a[2:4]], a[4:]), r'value must have shape'),
    ('weight', lambda a: ([*a[:2], a[2][:, :, :2], a[3]], a[4:]), r'weight must have shape'),
    ('bias', lambda a: ([*a[:3], a[3][:3]], a[4:]), r'bias must have shape'),
]


@pytest.mark.parametrize('name, bad, message', BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_named_by_the_op_and_the_checks(name, bad, message):
    tensors, ints = bad([t.detach() for t in _inputs(1, 5, 7, 4)] + [5, 7, 0, 5])
    with pytest.raises(RuntimeError, match=message):
        torch.ops.mmtransnext.conv_glu_gate(*tensors, *ints)
    with pytest.raises((ValueError, TypeError, RuntimeError), match=message):
        check_conv_glu_gate('conv_glu_gate', *tensors, *ints)
    with pytest.raises((ValueError, TypeError, RuntimeError), match=message):
        torch.ops.mmtransnext.conv_glu_gate(*[t.to('meta') for t in tensors], *ints)


def test_usable_only_for_float_cpu_tensors_the_extension_serves(monkeypatch):
    assert cg.usable(torch.zeros(1, 4, 2))
    assert not cg.usable(torch.zeros(1, 4, 2, dtype=torch.bfloat16))
    monkeypatch.setenv('MMTRANSNEXT_OPS', 'torch')
    assert not cg.usable(torch.zeros(1, 4, 2))


@pytest.mark.needs('torch', (2, 4), 'torch.library.opcheck')
def test_opcheck():
    torch.library.opcheck(torch.ops.mmtransnext.conv_glu_gate.default,
                          (*_inputs(1, 3, 4, 5), 3, 4, 0, 3))
