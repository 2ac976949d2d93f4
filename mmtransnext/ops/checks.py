"""Input checks of the mmtransnext ops: the one Python copy of every rule.

Used by the Python entry points (``sliding_window_qk`` / ``sliding_window_av``, the fused
``aggregated_attention`` dispatch) before they pick an implementation, by the fake kernels
(:mod:`.ext_registration`) and by the model layers (``check_window_size``). The compiled ops
check the same rules with the same messages in C++ (csrc/common/checks.h), so a raw
``torch.ops.mmtransnext`` call fails like the Python API; the tests run every bad-input case
on both.
"""
import torch

from mmtransnext.compat import check

FLOAT_ACC = {torch.float16: torch.float32, torch.bfloat16: torch.float32}


def _require(cond, message) -> None:
    """ValueError(message()) unless cond. A symbolic condition (FakeTensor shapes under
    dynamic tracing) goes to torch._check instead of being specialised; under torch.jit.trace
    shapes are tensors, and bool() of them works."""
    if isinstance(cond, torch.SymBool):
        check(cond, message)
    elif not cond:
        raise ValueError(message())


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype of the kernels (at::opmath_type): fp32 for 16-bit floats."""
    return FLOAT_ACC.get(dtype, dtype)


def check_window_size(kernel_size, op: str = None) -> None:
    if (not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size < 1
            or kernel_size % 2 == 0):
        raise ValueError(
            f'{op + ": " if op else ""}window size must be a positive odd integer (3, 5, 7, ...), '
            f'got {kernel_size!r}: the window is centred on its query token, which needs an odd '
            'size.')


def check_window(op, height, width, kernel_size):
    check_window_size(kernel_size, op)
    _require(height >= 1 and width >= 1,
                 lambda: f'{op}: height and width must be positive, got {height} x {width}')


def check_like(op, name, t, like):
    """Same dtype and device as ``like`` (the op's first tensor)."""
    if t.dtype != like.dtype:
        raise TypeError(f'{op}: mixed dtypes {like.dtype} and {t.dtype} ({name}); cast both to '
                        'one dtype')
    if t.device != like.device:
        raise RuntimeError(f'{op}: tensors on different devices ({name} on {t.device}, inputs on '
                           f'{like.device}); move them to one device')


def check_shape(op, name, t, shape):
    _require(tuple(t.shape) == tuple(shape),
                 lambda: f'{op}: {name} must have shape {tuple(shape)}, got {tuple(t.shape)}')


def check_tokens(op, a, height, width):
    _require(a.shape[2] == height * width,
                 lambda: f'{op}: H*W = {height}*{width} = {height * width} but the tensors hold '
                         f'N = {a.shape[2]} tokens')


def check_grad(op, name, grad, shape, like):
    check_shape(op, name, grad, shape)
    check_like(op, name, grad, like)


def _check_pair(op, na, a, nb, b):
    if a.dim() != 4 or b.dim() != 4:
        raise ValueError(f'{op}: expected 4-D [B, heads, N, C] tensors, got {na} '
                         f'{tuple(a.shape)} and {nb} {tuple(b.shape)}')
    check_like(op, nb, b, a)
    for i in range(3):
        _require(a.shape[i] == b.shape[i],
                     lambda: f'{op}: batch, heads and tokens must match, got {na} '
                             f'{tuple(a.shape)} and {nb} {tuple(b.shape)}')
    if not a.is_floating_point():
        raise TypeError(f'{op}: expected floating-point tensors, got {a.dtype}')


def check_qk(op, q, k, height, width, kernel_size):
    check_window(op, height, width, kernel_size)
    _check_pair(op, 'q', q, 'k', k)
    _require(q.shape[3] == k.shape[3],
                 lambda: f'{op}: head_dim of q ({q.shape[3]}) and k ({k.shape[3]}) differ')
    check_tokens(op, q, height, width)


def check_rpb(op, q, rpb, kernel_size):
    nk = kernel_size * kernel_size
    _require(rpb.dim() == 2 and rpb.shape[0] == q.shape[1] and rpb.shape[1] == nk,
                 lambda: f'{op}: rpb must be [heads, k*k] = [{q.shape[1]}, {nk}], got '
                         f'{tuple(rpb.shape)}')
    check_like(op, 'rpb', rpb, q)


def check_av(op, attn, v, height, width, kernel_size):
    check_window(op, height, width, kernel_size)
    _check_pair(op, 'attn', attn, 'v', v)
    nk = kernel_size * kernel_size
    _require(attn.shape[3] == nk,
                 lambda: f'{op}: attn has {attn.shape[3]} window entries, kernel_size '
                         f'{kernel_size} needs {nk}')
    check_tokens(op, v, height, width)


AGGREGATED_INPUTS = ('q', 'q_scaled', 'key', 'value', 'key_pool', 'value_pool', 'rpb',
                     'pos_table', 'learnable_tokens', 'learnable_bias', 'pos_rows')
N_FLOAT_INPUTS = len(AGGREGATED_INPUTS) - 1  # all but pos_rows (int64)


def check_aggregated_attention(op, tensors, height, width, kernel_size, pool_height,
                               pool_width):
    """``tensors``: the eleven inputs of the fused op in AGGREGATED_INPUTS order. The values
    of ``pos_rows`` (< R, the rows of pos_table) are checked where they are read (C++)."""
    check_window(op, height, width, kernel_size)
    q = tensors[0]
    if q.dim() != 4:
        raise ValueError(f'{op}: expected 4-D [B, heads, N, C] tensors, got q {tuple(q.shape)}')
    if not q.is_floating_point():
        raise TypeError(f'{op}: expected floating-point tensors, got {q.dtype}')
    for name, t in zip(AGGREGATED_INPUTS[:N_FLOAT_INPUTS], tensors):
        check_like(op, name, t, q)
    rows = tensors[N_FLOAT_INPUTS]
    if rows.dtype != torch.int64 or rows.device != q.device:
        raise TypeError(f'{op}: pos_rows must be an int64 tensor on {q.device}, got '
                        f'{rows.dtype} on {rows.device}')
    B, heads, N, d = q.shape
    _require(B >= 1, lambda: f'{op}: empty batch (B = 0): nothing to attend to')
    check_tokens(op, q, height, width)
    _require(pool_height >= 1 and pool_width >= 1,
                 lambda: f'{op}: pooled grid must be positive, got {pool_height} x {pool_width}')
    _require(pool_height <= height and pool_width <= width,
                 lambda: f'{op}: pooled grid {pool_height} x {pool_width} is larger than the '
                         f'query grid {height} x {width}: the pooled path must not have more '
                         'rows or columns than the token map (use the torch path, '
                         'MMTRANSNEXT_OPS=torch, for such inputs)')
    P, nk = pool_height * pool_width, kernel_size * kernel_size
    table = tensors[AGGREGATED_INPUTS.index('pos_table')]
    _require(table.dim() == 3 and table.shape[1] >= 1,
             lambda: f'{op}: pos_table must be [heads, R, W*Wk] with R >= 1, got '
                     f'{tuple(table.shape)}')
    shapes = dict(q_scaled=(B, heads, N, d), key=(B, heads, N, d), value=(B, heads, N, d),
                  key_pool=(B, heads, P, d), value_pool=(B, heads, P, d), rpb=(heads, nk),
                  pos_table=(heads, table.shape[1], width * pool_width),
                  learnable_tokens=(heads, d, nk), learnable_bias=(heads, nk),
                  pos_rows=(height * pool_height,))
    for name, t in zip(AGGREGATED_INPUTS[1:], tensors[1:]):
        check_shape(op, name, t, shapes[name])


def check_pos_rows_values(op, rows, n_rows):
    """The values of ``pos_rows`` index the rows of pos_table: all in [0, R). Read on the CPU
    only, as the C++ op does (csrc/aggregated_attention.cpp): on a GPU the check would wait
    for the device at every call; the model builds the rows itself."""
    if rows.device.type != 'cpu' or rows.numel() == 0:
        return
    lo, hi = int(rows.min()), int(rows.max())
    if lo < 0 or hi >= n_rows:
        raise RuntimeError(f'{op}: pos_rows holds values outside [0, R) = [0, {n_rows}) (min '
                           f'{lo}, max {hi}): they index the rows of pos_table')


# dtypes of the compiled ops that compute in their inputs' dtype (cpb_mlp, conv_glu_gate)
KERNEL_FLOAT_DTYPES = (torch.float32, torch.float64)


def check_kernel_float(op, t):
    if t.dtype not in KERNEL_FLOAT_DTYPES:
        raise TypeError(f'{op}: expected float32 or float64 tensors, got {t.dtype}')


def check_cpb_mlp(op, rows, cols, weight, bias):
    """The fused log-CPB MLP's inputs: rows [U, K], cols [V, K], weight [heads, K],
    bias [heads], one float32 / float64 dtype and device."""
    check_kernel_float(op, rows)
    for name, t in (('cols', cols), ('weight', weight), ('bias', bias)):
        check_like(op, name, t, rows)
    _require(rows.dim() == 2 and cols.dim() == 2 and rows.shape[1] == cols.shape[1],
             lambda: f'{op}: rows [U, K] and cols [V, K] must share K, got '
                     f'{tuple(rows.shape)} and {tuple(cols.shape)}')
    _require(weight.dim() == 2 and weight.shape[1] == rows.shape[1],
             lambda: f'{op}: weight must be [heads, K] with K = {rows.shape[1]}, got '
                     f'{tuple(weight.shape)}')
    check_shape(op, 'bias', bias, (weight.shape[0],))


def check_conv_glu_gate(op, gate, value, weight, bias, height, width, row_begin, row_end):
    """ConvGLU's fused gate: gate [B, height * width, C] channels last, value [B, (row_end -
    row_begin) * width, C], weight [C, 1, 3, 3], bias [C], one float32 / float64 dtype."""
    check_kernel_float(op, gate)
    for name, t in (('value', value), ('weight', weight), ('bias', bias)):
        check_like(op, name, t, gate)
    _require(height >= 1 and width >= 1,
             lambda: f'{op}: height and width must be positive, got {height} x {width}')
    _require(0 <= row_begin < row_end <= height,
             lambda: f'{op}: output rows [{row_begin}, {row_end}) must lie in [0, {height})')
    _require(gate.dim() == 3 and gate.shape[1] == height * width,
             lambda: f'{op}: gate must be [B, height * width, C] = [B, {height * width}, C], '
                     f'got {tuple(gate.shape)}')
    B, C = gate.shape[0], gate.shape[2]
    check_shape(op, 'value', value, (B, (row_end - row_begin) * width, C))
    check_shape(op, 'weight', weight, (C, 1, 3, 3))
    check_shape(op, 'bias', bias, (C,))
