"""What one timed step is: a backbone's forward or training step in a precision, or the
window ops alone at one stage's shape."""
from .implementations import OURS

AUTOCAST_DTYPES = {'bf16-autocast': 'bfloat16', 'fp16-autocast': 'float16'}


def model_group(impl):
    """Our implementations share one built model; every other one is its own."""
    return 'ours' if impl in OURS else impl


def build_model(impl, case, arch, authors_repo=None):
    """(model, what was built) for a variant's implementation."""
    if impl in OURS:
        from mmtransnext.models import TransNeXt
        return (TransNeXt(arch=arch, img_size=case.img_size, pos_bias=case.pos_bias),
                f'TransNeXt(arch={arch!r}, img_size={case.img_size}, '
                f'pos_bias={case.pos_bias!r})')
    if impl == 'authors':
        from . import authors
        return authors.build(authors_repo, case, arch), authors.mapping(case, arch)
    from . import references
    return references.build(impl)


def _autocast(device, precision):
    import torch
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device.type, dtype=getattr(torch, dtype or 'float32'),
                          enabled=dtype is not None)


def forward_outputs(model, x, precision):
    """The backbone's outputs under no_grad in ``precision``, as fp32."""
    import torch
    with torch.no_grad(), _autocast(x.device, precision):
        return [o.float() for o in model(x)]


def backbone_step(model, x, mode, precision):
    """One forward (no_grad) or one training step: forward + backward of the sum of the
    output means, gradients kept between steps (accumulated, never zeroed or freed), as a
    training loop holds them. The bf16 training step goes through the configs' optimizer
    wrapper for bf16 on a CPU (BF16OptimWrapper: its autocast and backward)."""
    import torch
    if mode != 'train':
        def step():
            with torch.no_grad(), _autocast(x.device, precision):
                model(x)
        return step
    if precision == 'bf16-autocast':
        from mmtransnext.engine.bf16_optim_wrapper import BF16OptimWrapper
        wrapper = BF16OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.))

        def step():
            with wrapper.optim_context(model):
                outs = model(x)
            wrapper.backward(sum(o.float().mean() for o in outs))
        return step

    def step():
        with _autocast(x.device, precision):
            outs = model(x)
        sum(o.float().mean() for o in outs).backward()
    return step


def ops_step(arch, res, stage, batch, mode, device):
    """One sliding_qk and one sliding_av call on the inputs of one block of ``stage``
    (looked up per call: :func:`.implementations.use_impl` switches them)."""
    import torch

    from mmtransnext.ops import attention as aa

    from .cases import windowed_stages
    _, heads, d, side, ks, _ = next(s for s in windowed_stages(arch, res) if s[0] == stage)
    train = mode == 'ops-train'
    B, N, nk = batch, side * side, ks * ks
    # [B, N, heads, d] memory seen as [B, heads, N, d], as the block passes them
    q, k, v = torch.randn(3, B, N, heads, d, device=device).transpose(2, 3).unbind(0)
    w = torch.randn(B, heads, N, nk, device=device)
    rpb = torch.randn(heads, nk, device=device)
    leaves = [t.requires_grad_(train) for t in (q, k, v, w, rpb)]
    if train:
        g_attn = torch.randn(B, heads, N, nk, device=device)
        g_out = torch.randn(B, heads, N, d, device=device)

    def step():
        qk, av = aa.sliding_window_qk, aa.sliding_window_av
        if train:
            attn = qk(q, k, rpb, side, side, ks)
            out = av(w, v, side, side, ks)
            torch.autograd.grad([attn, out], leaves, [g_attn, g_out])
        else:
            with torch.no_grad():
                qk(q, k, rpb, side, side, ks)
                av(w, v, side, side, ks)
    return step


def relative_error(outputs, reference):
    """||outputs - reference|| / ||reference|| over all output tensors together."""
    num = sum(float((o - r).pow(2).sum()) for o, r in zip(outputs, reference))
    den = sum(float(r.pow(2).sum()) for r in reference)
    return (num / den) ** 0.5 if den else float('nan')
