"""A weight file's whole life: its layouts and strict checks (state_dict.py), conversion
between the authors' and mm layouts, the safe reader (safe_load.py), atomic writes, the
checkpoint hook, the RNG state it carries, the choice of the checkpoint to resume from and
what changed since, and the strict-load hook."""
from .state_dict import (CheckpointMismatchError, backbone_state_dict, check_state_dict,
                         load_backbone_checkpoint, unwrap_state_dict)

__all__ = ['CheckpointMismatchError', 'backbone_state_dict', 'check_state_dict',
           'load_backbone_checkpoint', 'unwrap_state_dict']
