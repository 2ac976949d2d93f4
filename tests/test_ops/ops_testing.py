"""Shared helpers of the tests/test_ops tests (imported as a plain module)."""
import os

import pytest
import torch

from mmtransnext.ops import ext_loader
from mmtransnext.ops.testing import attention_inputs, window_inputs
from mmtransnext.ops.window_geometry import outside_mask

EXT = ext_loader.load()
EXT_MISSING = (f'mmtransnext._ext is not built ({ext_loader.load_error()}); build it with '
               '`make setup`')
requires_ext = pytest.mark.skipif(EXT is None, reason=EXT_MISSING)
if not torch.cuda.is_available():
    _NO_CUDA = ('no CUDA device: the CUDA kernels cannot run here' +
                (' (they are compiled in: _ext.with_cuda() is True)' if ext_loader.has_cuda()
                 else ''))
else:
    _NO_CUDA = 'mmtransnext._ext has no CUDA kernels: rebuild with FORCE_CUDA=1'
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available() or not ext_loader.has_cuda(),
                                   reason=_NO_CUDA)

WITH_OPS = os.environ.get('MMTRANSNEXT_WITH_OPS', '1') != '0'


# q, k, v [B, heads, H*W, d], rpb [heads, k*k], window weights w [B, heads, H*W, k*k]
make_inputs = window_inputs
# AttentionInputs of the fused aggregated attention
make_attention_inputs = attention_inputs


def mask(H, W, ks, device='cpu'):
    """[H*W, k*k] True outside the image."""
    return outside_mask(H, W, ks, torch.device(device))

