"""Our implementations of the window attention and the switch between them (environment
plus, for unfold, the names imported in mmtransnext/ops/attention.py), switchable at any
time on one built model."""
import os

from .unfold_baseline import unfold_av, unfold_qk

OURS = ('fused', 'ext', 'triton', 'torch', 'unfold')
CUDA_DEFAULT = ('torch', 'ext', 'triton')
CPU_DEFAULT = ('fused', )

_ORIGINAL = {}


def use_impl(impl):
    """Route AggregatedAttention's attention core and window ops to ``impl``."""
    from mmtransnext.ops import attention as aa
    if not _ORIGINAL:
        _ORIGINAL.update(qk=aa.sliding_window_qk, av=aa.sliding_window_av)
    os.environ['MMTRANSNEXT_FUSED'] = {'fused': '1', 'triton': 'triton'}.get(impl, '0')
    if impl == 'triton':
        os.environ['MMTRANSNEXT_OPS'] = 'auto'
        aa.sliding_window_qk, aa.sliding_window_av = _ORIGINAL['qk'], _ORIGINAL['av']
        from mmtransnext.ops import triton_support
        reason = triton_support.unavailable_reason()
        if reason:
            raise SystemExit(f'--impls triton: {reason}')
        return
    if impl == 'unfold':
        os.environ['MMTRANSNEXT_OPS'] = 'torch'  # nothing else may reach the ext
        aa.sliding_window_qk, aa.sliding_window_av = unfold_qk, unfold_av
        return
    os.environ['MMTRANSNEXT_OPS'] = 'ext' if impl == 'fused' else impl
    aa.sliding_window_qk, aa.sliding_window_av = _ORIGINAL['qk'], _ORIGINAL['av']
    from mmtransnext.ops import ext_loader
    if impl in ('fused', 'ext') and ext_loader.load() is None:
        raise SystemExit(f'mmtransnext._ext is not built: {ext_loader.load_error()}')
