"""The fused log-CPB MLP op (torch.ops.mmtransnext.cpb_mlp): the torch path's values and
gradients (float64), deterministic, dispatched where the extension serves CPU tensors, and
bad inputs named alike by the C++ op and the fake kernel."""
import pytest
import torch
import torch.nn.functional as F

from mmtransnext.ops import cpb_mlp as cpb
from mmtransnext.ops.checks import check_cpb_mlp

from ops_testing import requires_ext

pytestmark = requires_ext


def _inputs(U=13, V=11, K=40, heads=3, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g, dtype=dtype).requires_grad_()
            for shape in ((U, K), (V, K), (heads, K), (heads,))]


def _plain(rows, cols, weight, bias):
    return F.linear(F.relu(rows[:, None] + cols), weight, bias)


@pytest.mark.parametrize('sizes', [dict(), dict(U=1, V=1, K=1, heads=1),
                                   dict(U=37, V=5, K=512, heads=24)])
def test_op_matches_the_plain_mlp_with_gradients(sizes):
    args = _inputs(**sizes)
    out = torch.ops.mmtransnext.cpb_mlp(*args)
    ref = _plain(*args)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    weights = torch.randn(ref.shape, dtype=ref.dtype)
    grads = torch.autograd.grad((out * weights).sum(), args)
    ref_grads = torch.autograd.grad((ref * weights).sum(), args)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)


def test_gradcheck():
    torch.autograd.gradcheck(torch.ops.mmtransnext.cpb_mlp, _inputs(U=4, V=3, K=6, heads=2))


@pytest.mark.parametrize('K, heads', [(512, 12), (512, 3), (12, 5)])  # 8-lane kernels, tail
def test_float32_close_and_deterministic(K, heads):
    args = _inputs(U=61, V=61, K=K, heads=heads, dtype=torch.float32)
    out = torch.ops.mmtransnext.cpb_mlp(*args)
    ref = _plain(*args)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    grad = torch.randn(out.shape)
    first = torch.autograd.grad(out, args, grad)
    for g, r in zip(first, torch.autograd.grad(ref, args, grad)):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-3)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        again = torch.autograd.grad(torch.ops.mmtransnext.cpb_mlp(*args), args, grad)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(first, again):
        assert torch.equal(a, b)


def test_dispatch_takes_the_op_and_the_torch_path_agrees(monkeypatch):
    args = _inputs(U=20, V=9, K=16)
    calls = []
    op = torch.ops.mmtransnext.cpb_mlp
    monkeypatch.setattr(cpb.torch.ops.mmtransnext, 'cpb_mlp',
                        lambda *a: calls.append(1) or op(*a), raising=False)
    fused = cpb.cpb_mlp(*args)
    assert calls == [1]
    monkeypatch.setenv('MMTRANSNEXT_OPS', 'torch')
    monkeypatch.setattr(cpb, 'MLP_CHUNK_ELEMENTS', 9 * 16 * 3)  # several chunks
    torch_path = cpb.cpb_mlp(*args)
    assert calls == [1]
    torch.testing.assert_close(fused, torch_path, rtol=1e-12, atol=1e-12)


def test_bf16_inputs_computed_in_float32_returned_in_bf16():
    args = [t.detach().bfloat16() for t in _inputs(dtype=torch.float32)]
    out = cpb.cpb_mlp(*args)
    assert out.dtype == torch.bfloat16  # as the torch path returns under autocast
    torch.testing.assert_close(out.float(), _plain(*[t.float() for t in args]), rtol=8e-3,
                               atol=1e-5)


BAD = [
    ('dtype', lambda a: [t.half() for t in a], r'expected float32 or float64 tensors'),
    ('mixed', lambda a: [a[0], a[1].float(), a[2], a[3]], r'mixed dtypes'),
    ('K', lambda a: [a[0], a[1][:, :5], a[2], a[3]], r'rows \[U, K\] and cols \[V, K\] must '
     r'share K'),
    ('weight', lambda a: [a[0], a[1], a[2][:, :5], a[3]], r'weight must be \[heads, K\]'),
    ('bias', lambda a: [a[0], a[1], a[2], a[3][:2]], r'bias must have shape'),
]


@pytest.mark.parametrize('name, bad, message', BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_named_by_the_op_and_the_checks(name, bad, message):
    args = bad([t.detach() for t in _inputs()])
    with pytest.raises(RuntimeError, match=message):
        torch.ops.mmtransnext.cpb_mlp(*args)
    with pytest.raises((ValueError, TypeError, RuntimeError), match=message):
        check_cpb_mlp('cpb_mlp', *args)
    with pytest.raises((ValueError, TypeError, RuntimeError), match=message):
        torch.ops.mmtransnext.cpb_mlp(*[t.to('meta') for t in args])


def test_backward_op_checks_its_gradient():
    rows, cols, weight, _ = [t.detach() for t in _inputs()]
    with pytest.raises(RuntimeError, match=r'grad_out must have shape'):
        torch.ops.mmtransnext.cpb_mlp_backward(torch.zeros(2, 2, 2, dtype=rows.dtype), rows,
                                               cols, weight)


@pytest.mark.needs('torch', (2, 4), 'torch.library.opcheck')
def test_opcheck():
    torch.library.opcheck(torch.ops.mmtransnext.cpb_mlp.default, _inputs(U=5, V=4, K=8))
