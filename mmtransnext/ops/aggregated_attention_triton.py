"""The fused aggregated attention in Triton: the GPU kernel, with the contract of the CPU op.

Same inputs (:class:`~.attention.AttentionInputs`, ``pos_rows`` given), geometry and math as
``torch.ops.mmtransnext.aggregated_attention`` (csrc/common/aggregated_attention_math.h): for
query p = (y, x) of one (batch, head)

  l_j = qs . kn[p + o_j] + rpb[j]   (window logits, -inf outside the image)
  s_m = qs . kp[m] + table[rows[y * Hk + ky], x * Wk + kx]   (pooled logits, m = ky * Wk + kx)
  (a, b) = softmax over both; lse kept for backward (fp32, [B, heads, N])
  out = sum_j (a_j + q . lt[:, j] + lb[j]) v[p + o_j] + sum_m b_m vp[m]

Forward: one program per (block of BLOCK_M queries, batch x head); an online softmax over the
k*k window keys (one gather each) and the pooled keys (BLOCK_P at a time, ``tl.dot``); the
[B, heads, N, P] probabilities are never formed. Backward recomputes them from the lse: a
first pass gives D = sum a dw + sum b ds per query, a second the gradients. Sums over queries
(rpb, learnable tokens / bias, pooled keys / values, the bias table) and the window keys /
values (each token is the neighbour of k*k queries) are added with fp32 atomics into fp32
buffers: on a GPU the backward is not bitwise deterministic (the CPU op is).

Accumulation is fp32 for every dtype; fp32 dots run with ``input_precision='ieee'`` (no TF32),
fp16 / bf16 dots take 16-bit operands and accumulate in fp32 (bf16 ones run in fp32 under the
interpreter, whose bf16 ``tl.dot`` is wrong: the GPU's bf16 dot is not what it verifies; its
fp32 -> bf16 conversion truncates where a GPU rounds to nearest, so bf16 results stored by the
kernels carry up to one ulp there, twice the GPU's rounding error).
Offsets that can pass 2^31 at the largest inputs (batch x head bases, bias-table rows) are
int64 (:func:`_bh_base`, :func:`_table_offset`; tests/test_ops/test_triton_attention.py runs
them at batch 8, 2048 x 2048, TransNeXt-B). :func:`compile_for` compiles both kernels for a
GPU architecture without a GPU.

Import only where :func:`.triton_support.unavailable_reason` is None: this imports triton.
"""
import contextlib

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from .checks import (AGGREGATED_INPUTS, acc_dtype, check_aggregated_attention,
                     check_pos_rows_values)
from .triton_support import interpreting

# (queries per program, pooled keys per step of the pooled loop, warps). On a GPU: not timed
# (no GPU has run them yet); chosen so that ptxas allocates them without register spills at
# head_dim <= 32 on sm_80 / sm_90 (tests/test_ops/test_triton_attention.py checks it). The
# interpreter's cost is per program, not per element: larger blocks there.
BLOCKS = {'forward': (32, 32, 4), 'backward': (32, 16, 8), 'interpreter': (128, 64, 4)}


def _block(n: int) -> int:
    """Smallest power of two >= n and >= 16 (tl.dot needs 16 in every dimension)."""
    return max(16, triton.next_power_of_2(n))


# -- index helpers (int64 where a product can pass 2^31) --------------------------------------

@triton.jit
def _bh_base(bh, n_rows, row_len):
    """Element offset of the (batch, head) slice bh of a [B*heads, n_rows, row_len] tensor."""
    return bh.to(tl.int64) * n_rows * row_len


@triton.jit
def _table_offset(h, n_rows, row_len, rows, col):
    """Offset of table[h, rows, col] in a [heads, n_rows, row_len] table (rows int64)."""
    return h.to(tl.int64) * n_rows * row_len + rows.to(tl.int64) * row_len + col


@triton.jit
def _neighbour(y, x, j, H, W, KS: tl.constexpr):
    """Token p + o_j of queries (y, x) and whether it lies inside (window_geometry.h)."""
    ny = y + (j // KS - KS // 2)
    nx = x + (j % KS - KS // 2)
    inside = (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
    return ny * W + nx, inside


@triton.jit
def _dot(a, b, FP32: tl.constexpr):
    """a @ b, fp32 accumulation; FP32: in fp32 without TF32 (operands cast: exact for 16-bit
    ones), else on the 16-bit operands."""
    if FP32:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision='ieee')
    return tl.dot(a, b)


@triton.jit
def _pooled_logits(qs_in, KP, PT, ROWS, kp_base, h, p0, offs_d, d_mask, y, x, m_mask,
                   D, P, HK, WK, R, ROW_LEN, BLOCK_P: tl.constexpr, FP32: tl.constexpr):
    """Pooled keys [p0, p0 + BLOCK_P): logits s [BLOCK_M, BLOCK_P] (-inf at padded keys),
    the offsets of those keys' rows ([BLOCK_P, BLOCK_D]) and mask, the keys, and the bias
    offsets and mask (for the table's gradient)."""
    offs_p = p0 + tl.arange(0, BLOCK_P)
    p_mask = offs_p < P
    pd = kp_base + offs_p[:, None] * D + offs_d[None, :]
    pd_mask = p_mask[:, None] & d_mask[None, :]
    kp = tl.load(KP + pd, mask=pd_mask, other=0.)
    s = _dot(qs_in, tl.trans(kp), FP32)
    ky = offs_p // WK
    kx = offs_p % WK
    mask = m_mask[:, None] & p_mask[None, :]
    rows = tl.load(ROWS + y[:, None] * HK + ky[None, :], mask=mask, other=0)
    offset = _table_offset(h, R, ROW_LEN, rows, x[:, None] * WK + kx[None, :])
    bias = tl.load(PT + offset, mask=mask, other=0.).to(tl.float32)
    s = tl.where(p_mask[None, :], s + bias, float('-inf'))
    return s, pd, pd_mask, kp, offset, mask


@triton.jit
def _pooled_probs(qs_in, go_in, lse, KP, VP, PT, ROWS, kp_base, h, p0, offs_d, d_mask, y, x,
                  m_mask, D, P, HK, WK, R, ROW_LEN, BLOCK_P: tl.constexpr,
                  FP32: tl.constexpr):
    """Backward, pooled keys [p0, p0 + BLOCK_P): probabilities b (from the lse) and the
    logit-side gradient ds = go . vp, with what _pooled_logits returns."""
    s, pd, pd_mask, kp, offset, mask = _pooled_logits(
        qs_in, KP, PT, ROWS, kp_base, h, p0, offs_d, d_mask, y, x, m_mask, D, P, HK, WK, R,
        ROW_LEN, BLOCK_P, FP32)
    b = tl.where(mask, tl.exp(s - lse[:, None]), 0.)
    vp = tl.load(VP + pd, mask=pd_mask, other=0.)
    ds = _dot(go_in, tl.trans(vp), FP32)
    return b, ds, pd, pd_mask, kp, offset, mask


@triton.jit
def _query_block(Q, QS, N, W, D, HEADS, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """This program's queries: batch x head and head, query and channel indices, the masks,
    query coordinates y / x, the slice's base offset, the [BLOCK_M, BLOCK_D] offsets and
    mask, q_scaled as stored and in fp32, q in fp32."""
    bh = tl.program_id(1).to(tl.int64)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_mask = offs_m < N
    d_mask = offs_d < D
    base = _bh_base(bh, N, D)
    qd = base + offs_m[:, None] * D + offs_d[None, :]
    md_mask = m_mask[:, None] & d_mask[None, :]
    qs_in = tl.load(QS + qd, mask=md_mask, other=0.)
    q = tl.load(Q + qd, mask=md_mask, other=0.).to(tl.float32)
    return (bh, bh % HEADS, offs_m, offs_d, m_mask, d_mask, offs_m // W, offs_m % W, base, qd,
            md_mask, qs_in, qs_in.to(tl.float32), q)


@triton.jit
def _window_key(K, V, RPB, qs, base, h, j, y, x, m_mask, offs_d, d_mask, H, W, D,
                KS: tl.constexpr):
    """Window position j of the queries: the neighbour's offsets and mask, its key and value
    (zero outside) and the logit l_j (-inf outside)."""
    n, inside = _neighbour(y, x, j, H, W, KS)
    inside = inside & m_mask
    nd = base + n[:, None] * D + offs_d[None, :]
    nd_mask = inside[:, None] & d_mask[None, :]
    kj = tl.load(K + nd, mask=nd_mask, other=0.).to(tl.float32)
    vj = tl.load(V + nd, mask=nd_mask, other=0.).to(tl.float32)
    lj = tl.sum(qs * kj, axis=1) + tl.load(RPB + h * KS * KS + j).to(tl.float32)
    return nd, nd_mask, inside, kj, vj, tl.where(inside, lj, float('-inf'))


@triton.jit
def _learnable(LT, LB, q, h, j, offs_d, d_mask, D, KS: tl.constexpr):
    """Learnable window weight q . lt[h, :, j] + lb[h, j] of the queries, and lt[h, :, j]."""
    NK: tl.constexpr = KS * KS
    ltj = tl.load(LT + (h * D + offs_d) * NK + j, mask=d_mask, other=0.).to(tl.float32)
    return tl.sum(q * ltj[None, :], axis=1) + tl.load(LB + h * NK + j).to(tl.float32), ltj


@triton.jit
def _fwd_kernel(Q, QS, K, V, KP, VP, RPB, PT, LT, LB, ROWS, OUT, LSE,
                N, H, W, D, P, HK, WK, R, ROW_LEN, HEADS,
                KS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
                BLOCK_P: tl.constexpr, FP32: tl.constexpr):
    bh, h, offs_m, offs_d, m_mask, d_mask, y, x, base, qd, md_mask, qs_in, qs, q = \
        _query_block(Q, QS, N, W, D, HEADS, BLOCK_M, BLOCK_D)

    m_i = tl.full([BLOCK_M], -1e30, tl.float32)  # finite: exp(m_i - m_new) never NaN
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)     # softmax-weighted values
    acc_lt = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)  # learnable term
    for j in range(KS * KS):
        _, _, _, _, vj, lj = _window_key(K, V, RPB, qs, base, h, j, y, x, m_mask, offs_d,
                                         d_mask, H, W, D, KS)
        m_new = tl.maximum(m_i, lj)
        alpha = tl.exp(m_i - m_new)
        p = tl.exp(lj - m_new)
        l_i = l_i * alpha + p
        acc = acc * alpha[:, None] + p[:, None] * vj
        m_i = m_new
        wj, _ = _learnable(LT, LB, q, h, j, offs_d, d_mask, D, KS)
        acc_lt += wj[:, None] * vj

    kp_base = _bh_base(bh, P, D)
    for p0 in range(0, P, BLOCK_P):
        s, pd, pd_mask, _, _, _ = _pooled_logits(qs_in, KP, PT, ROWS, kp_base, h, p0, offs_d,
                                                 d_mask, y, x, m_mask, D, P, HK, WK, R,
                                                 ROW_LEN, BLOCK_P, FP32)
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        alpha = tl.exp(m_i - m_new)
        p = tl.exp(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        vp = tl.load(VP + pd, mask=pd_mask, other=0.)
        acc = acc * alpha[:, None] + _dot(p.to(vp.dtype), vp, FP32)
        m_i = m_new

    out = acc / l_i[:, None] + acc_lt
    tl.store(OUT + qd, out.to(OUT.dtype.element_ty), mask=md_mask)
    tl.store(LSE + bh * N + offs_m, m_i + tl.log(l_i), mask=m_mask)


@triton.jit
def _bwd_kernel(Q, QS, K, V, KP, VP, RPB, PT, LT, LB, ROWS, GO, LSE,
                GQ, GQS, GK, GV, GKP, GVP, GRPB, GPT, GLT, GLB,
                N, H, W, D, P, HK, WK, R, ROW_LEN, HEADS,
                KS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
                BLOCK_P: tl.constexpr, FP32: tl.constexpr):
    bh, h, offs_m, offs_d, m_mask, d_mask, y, x, base, qd, md_mask, qs_in, qs, q = \
        _query_block(Q, QS, N, W, D, HEADS, BLOCK_M, BLOCK_D)
    go_in = tl.load(GO + qd, mask=md_mask, other=0.)
    go = go_in.to(tl.float32)
    lse = tl.load(LSE + bh * N + offs_m, mask=m_mask, other=0.)
    kp_base = _bh_base(bh, P, D)

    # pass 1: D = sum_j a_j dw_j + sum_m b_m ds_m (the softmax backward's row sums)
    delta = tl.zeros([BLOCK_M], tl.float32)
    for j in range(KS * KS):
        _, _, _, _, vj, lj = _window_key(K, V, RPB, qs, base, h, j, y, x, m_mask, offs_d,
                                         d_mask, H, W, D, KS)
        delta += tl.exp(lj - lse) * tl.sum(go * vj, axis=1)
    for p0 in range(0, P, BLOCK_P):
        b, ds, _, _, _, _, _ = _pooled_probs(qs_in, go_in, lse, KP, VP, PT, ROWS, kp_base, h,
                                             p0, offs_d, d_mask, y, x, m_mask, D, P, HK, WK,
                                             R, ROW_LEN, BLOCK_P, FP32)
        delta += tl.sum(b * ds, axis=1)

    # pass 2: the gradients
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    dqs = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for j in range(KS * KS):
        nd, nd_mask, inside, kj, vj, lj = _window_key(K, V, RPB, qs, base, h, j, y, x, m_mask,
                                                      offs_d, d_mask, H, W, D, KS)
        aj = tl.exp(lj - lse)  # 0 outside
        dwj = tl.sum(go * vj, axis=1)  # 0 outside (v is zero there)
        learn, ltj = _learnable(LT, LB, q, h, j, offs_d, d_mask, D, KS)
        wj = tl.where(inside, aj + learn, 0.)
        # learnable term: q, the tokens, the bias
        dq += dwj[:, None] * ltj[None, :]
        tl.atomic_add(GLT + (h * D + offs_d) * KS * KS + j, tl.sum(dwj[:, None] * q, axis=0),
                      mask=d_mask)
        tl.atomic_add(GLB + h * KS * KS + j, tl.sum(dwj, axis=0))
        # softmax: window logits -> q_scaled, keys, rpb; window sum -> values
        dlj = aj * (dwj - delta)
        dqs += dlj[:, None] * kj
        tl.atomic_add(GK + nd, dlj[:, None] * qs, mask=nd_mask)
        tl.atomic_add(GV + nd, wj[:, None] * go, mask=nd_mask)
        tl.atomic_add(GRPB + h * KS * KS + j, tl.sum(dlj, axis=0))
    for p0 in range(0, P, BLOCK_P):
        b, ds, pd, pd_mask, kp, offset, mask = _pooled_probs(
            qs_in, go_in, lse, KP, VP, PT, ROWS, kp_base, h, p0, offs_d, d_mask, y, x, m_mask,
            D, P, HK, WK, R, ROW_LEN, BLOCK_P, FP32)
        dsb = tl.where(mask, b * (ds - delta[:, None]), 0.)
        dqs += _dot(dsb.to(kp.dtype), kp, FP32)
        tl.atomic_add(GKP + pd, _dot(tl.trans(dsb).to(qs_in.dtype), qs_in, FP32), mask=pd_mask)
        tl.atomic_add(GVP + pd, _dot(tl.trans(b).to(go_in.dtype), go_in, FP32), mask=pd_mask)
        tl.atomic_add(GPT + offset, dsb, mask=mask)
    tl.store(GQ + qd, dq.to(GQ.dtype.element_ty), mask=md_mask)
    tl.store(GQS + qd, dqs.to(GQS.dtype.element_ty), mask=md_mask)


# -- launch -----------------------------------------------------------------------------------

def _meta(kernel_size, d, dtype, which, interpret):
    """(constexpr arguments, warps) of a kernel (``which``: 'forward' / 'backward')."""
    block_m, block_p, warps = BLOCKS['interpreter' if interpret else which]
    # bf16 dots in fp32 under the interpreter: its bf16 tl.dot is wrong (triton 3.7.1; the
    # products of bf16 values are exact in fp32, so the numbers are those of a bf16 dot)
    fp32_dots = dtype == torch.float32 or (interpret and dtype == torch.bfloat16)
    return dict(KS=kernel_size, BLOCK_M=block_m, BLOCK_D=_block(d), BLOCK_P=block_p,
                FP32=fp32_dots), warps


def _launch_args(t, height, width, kernel_size, pool_height, pool_width, which):
    """(grid, sizes, launch kwargs) of a kernel (``which``: 'forward' / 'backward'); ``t`` the
    contiguous inputs."""
    B, heads, N, d = t[0].shape
    if B * heads > 65535:  # the grid's second dimension
        raise ValueError(f'aggregated_attention (Triton): batch x heads = {B * heads} > 65535')
    R, row_len = t[_TABLE].shape[1:]
    sizes = (N, height, width, d, pool_height * pool_width, pool_height, pool_width, R,
             row_len, heads)
    meta, warps = _meta(kernel_size, d, t[0].dtype, which, interpreting())
    return (triton.cdiv(N, meta['BLOCK_M']), B * heads), sizes, dict(meta, num_warps=warps)


_SIZES = ('N', 'H', 'W', 'D', 'P', 'HK', 'WK', 'R', 'ROW_LEN', 'HEADS')
_FP32_BUFFERS = {'LSE', 'GK', 'GV', 'GKP', 'GVP', 'GRPB', 'GPT', 'GLT', 'GLB'}


def compile_for(arch: int, dtype: torch.dtype, kernel_size: int = 3, head_dim: int = 24):
    """Compile both kernels for an NVIDIA GPU of compute capability ``arch`` (80: A100, 90:
    H100) to cubin, on any machine (triton's bundled ptxas; no GPU needed): what a GPU would
    run, short of running it. Returns {'forward': kernel, 'backward': kernel}."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    name = {torch.float32: 'fp32', torch.float16: 'fp16', torch.bfloat16: 'bf16'}[dtype]
    compiled = {}
    for which, fn in (('forward', _fwd_kernel), ('backward', _bwd_kernel)):
        meta, warps = _meta(kernel_size, head_dim, dtype, which, interpret=False)
        signature = {a: 'constexpr' if a in meta else 'i32' if a in _SIZES else
                     '*i64' if a == 'ROWS' else '*fp32' if a in _FP32_BUFFERS else f'*{name}'
                     for a in fn.arg_names}
        constexprs = {(fn.arg_names.index(k),): v for k, v in meta.items()}
        compiled[which] = triton.compile(ASTSource(fn, signature, constexprs),
                                         target=GPUTarget('cuda', arch, 32),
                                         options=dict(num_warps=warps))
    return compiled


_TABLE = AGGREGATED_INPUTS.index('pos_table')


def _prepare(op, tensors, geometry):
    check_aggregated_attention(op, tensors, *geometry)
    if tensors[0].dtype == torch.float64:
        raise TypeError(f'{op} (Triton): float64 is not supported (fp32, fp16, bf16)')
    check_pos_rows_values(op, tensors[-1], tensors[_TABLE].shape[1])
    return [t.detach().contiguous() for t in tensors]


def _on_device(tensor):
    """Launch on the tensors' GPU (Triton launches on the current one)."""
    return torch.cuda.device(tensor.device) if tensor.is_cuda else contextlib.nullcontext()


def forward(tensors, height, width, kernel_size, pool_height, pool_width):
    """(out [B, heads, N, d], lse [B, heads, N] fp32) of the eleven inputs."""
    geometry = (height, width, kernel_size, pool_height, pool_width)
    t = _prepare('aggregated_attention', tensors, geometry)
    grid, sizes, meta = _launch_args(t, *geometry, 'forward')
    out = torch.empty_like(t[0])
    lse = torch.empty(t[0].shape[:3], dtype=acc_dtype(t[0].dtype), device=t[0].device)
    with _on_device(out):
        _fwd_kernel[grid](*t, out, lse, *sizes, **meta)
    return out, lse


def backward(grad_out, lse, tensors, height, width, kernel_size, pool_height, pool_width):
    """The ten input gradients (AGGREGATED_INPUTS order, all but pos_rows)."""
    geometry = (height, width, kernel_size, pool_height, pool_width)
    t = _prepare('aggregated_attention_backward', tensors, geometry)
    grid, sizes, meta = _launch_args(t, *geometry, 'backward')
    grad_q, grad_qs = torch.empty_like(t[0]), torch.empty_like(t[1])
    # summed with atomics: fp32 buffers, zeroed
    summed = [torch.zeros(x.shape, dtype=torch.float32, device=x.device) for x in t[2:10]]
    with _on_device(grad_q):
        _bwd_kernel[grid](*t, grad_out.contiguous(), lse.contiguous(), grad_q, grad_qs,
                          *summed, *sizes, **meta)
    return [grad_q, grad_qs] + [g.to(x.dtype) for g, x in zip(summed, t[2:10])]


class _AggregatedAttention(torch.autograd.Function):

    @staticmethod
    def forward(ctx, *args):
        tensors, geometry = args[:11], args[11:]
        out, lse = forward(tensors, *geometry)
        ctx.save_for_backward(lse, *tensors)
        ctx.geometry = geometry
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        lse, *tensors = ctx.saved_tensors
        grads = backward(grad_out, lse, tensors, *ctx.geometry)
        return (*grads, None, None, None, None, None, None)  # pos_rows, then the five ints


def aggregated_attention_triton(tensors, height, width, kernel_size, pool_height, pool_width):
    """Attention output [B, heads, N, d] of the eleven inputs (``pos_rows`` given), with
    autograd; what the dispatch point (:mod:`.attention`) calls."""
    return _AggregatedAttention.apply(*tensors, height, width, kernel_size, pool_height,
                                      pool_width)
