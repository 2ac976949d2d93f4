from .checkpoint import (CheckpointMismatchError, backbone_state_dict, check_state_dict,
                         load_backbone_checkpoint, unwrap_state_dict)

__all__ = ['CheckpointMismatchError', 'backbone_state_dict', 'check_state_dict',
           'load_backbone_checkpoint', 'unwrap_state_dict']
