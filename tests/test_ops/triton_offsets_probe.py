"""A Triton kernel that returns the fused kernels' offset helpers at given sizes (imported by
test_triton_attention.py in its TRITON_INTERPRET=1 child only: this imports triton)."""
import triton
import triton.language as tl

from mmtransnext.ops.aggregated_attention_triton import _bh_base, _table_offset


@triton.jit
def offsets_probe(out, bh, n, d, h, n_rows, row_len, row, col):
    tl.store(out, _bh_base(bh, n, d))
    tl.store(out + 1, _table_offset(h, n_rows, row_len, row, col))
