"""l2_normalize / scaled_query: F.normalize's and the plain expression's numbers and
gradients, without keeping the normalisation's input or q + query_embedding for backward."""
import torch
import torch.nn.functional as F

from mmtransnext.models.layers.cosine_query import l2_normalize, scaled_query


def _saved_storages(fn):
    """Data pointers of the tensors autograd keeps while ``fn`` runs, and its output."""
    saved = set()

    def pack(t):
        saved.add(t.untyped_storage().data_ptr())
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return saved, out


def test_l2_normalize_matches_f_normalize_with_gradients():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 17, 8, dtype=torch.double)
    x[0, 1, 4] = 0.                # a zero row: the norm is clamped to eps
    x[1, 2, 5] = 1e-14             # below eps, not zero
    x = x.requires_grad_()
    grad = torch.randn_like(x)
    ours = l2_normalize(x)
    (g_ours,) = torch.autograd.grad(ours, x, grad)
    ref = F.normalize(x, dim=-1)
    (g_ref,) = torch.autograd.grad(ref, x, grad)
    assert torch.equal(ours, ref)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-12, atol=0)
    torch.autograd.gradcheck(l2_normalize, (torch.randn(3, 5, dtype=torch.double,
                                                        requires_grad=True),))


def test_l2_normalize_keeps_its_output_not_its_input():
    x = torch.randn(1, 2, 64, 8).mul(3).requires_grad_()
    inputs = []
    saved, out = _saved_storages(lambda: l2_normalize(inputs.append(x * 1) or inputs[0]))
    assert out.untyped_storage().data_ptr() in saved
    assert inputs[0].untyped_storage().data_ptr() not in saved
    assert len(saved) == 3  # the output, the norms, the clamp mask


def test_scaled_query_matches_the_expression_with_gradients():
    torch.manual_seed(0)
    q = torch.randn(2, 3, 10, 4, dtype=torch.double, requires_grad=True)
    emb = torch.randn(3, 1, 4, dtype=torch.double, requires_grad=True)
    temp = torch.randn(3, 1, 1, dtype=torch.double, requires_grad=True)
    length = torch.rand(10, 1, dtype=torch.double) + 1
    for ls in (length, 2.5):
        grad = torch.randn(2, 3, 10, 4, dtype=torch.double)
        ours = scaled_query(q, emb, F.softplus(temp), ls)
        g_ours = torch.autograd.grad(ours, (q, emb, temp), grad)
        ref = (q + emb) * F.softplus(temp) * ls
        g_ref = torch.autograd.grad(ref, (q, emb, temp), grad)
        assert torch.equal(ours, ref)
        for a, b in zip(g_ours, g_ref):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.autograd.gradcheck(lambda *t: scaled_query(*t, length), (q, emb, temp))


def test_scaled_query_keeps_q_not_the_shifted_query():
    q = torch.randn(1, 2, 64, 8, requires_grad=True)
    emb = torch.randn(2, 1, 8, requires_grad=True)
    scale = torch.rand(2, 1, 1, requires_grad=True)
    saved, _ = _saved_storages(lambda: scaled_query(q, emb, scale, 3.0))
    assert saved == {t.untyped_storage().data_ptr() for t in (q, emb, scale)}


def test_no_grad_takes_the_plain_expressions():
    x = torch.randn(4, 8)
    with torch.no_grad():
        assert l2_normalize(x).grad_fn is None
        assert torch.equal(l2_normalize(x), F.normalize(x, dim=-1))
