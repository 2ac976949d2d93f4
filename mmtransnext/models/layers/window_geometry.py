"""Window geometry for the model layers: defined in :mod:`mmtransnext.ops` (the ops must not
import the models), re-exported here for the existing imports."""
from mmtransnext.ops.checks import check_window_size
from mmtransnext.ops.window_geometry import outside_mask, valid_counts, window_offsets

__all__ = ['check_window_size', 'outside_mask', 'valid_counts', 'window_offsets']
