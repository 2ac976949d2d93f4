"""tools/test.py's ``--pos-bias`` and ``--show-dir`` for every task."""
import logging
import os

import torch
from mmengine.config import Config
from mmengine.logging import print_log


def set_pos_bias(model: torch.nn.Module, mode: str) -> int:
    """Switch every TransNeXt inside ``model`` (also inside a TTA or DDP wrapper) to the
    position-bias ``mode``. Returns how many were switched."""
    from mmtransnext.models import TransNeXt
    count = 0
    for module in model.modules():
        if isinstance(module, TransNeXt):
            module.pos_bias = mode
            count += 1
    if count == 0:
        raise ValueError('--pos-bias was given but the model contains no TransNeXt')
    print_log(f'position bias of {count} TransNeXt backbone(s) set to {mode!r}',
              logger='current', level=logging.INFO)
    return count


def enable_visualization(cfg: Config, task: str, show_dir: str) -> None:
    """Draw every test prediction into ``show_dir``; a relative ``show_dir`` lies inside
    the work dir, for every task (an absolute path also keeps mmdet's hook from nesting
    folders when the work dir is relative)."""
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise RuntimeError('--show-dir needs default_hooks.visualization in the config')
    hook = hooks['visualization']
    out = os.path.abspath(os.path.join(cfg.work_dir, show_dir))  # join keeps absolute ones
    if task == 'det':
        hook['draw'] = True
        hook['test_out_dir'] = out
        return
    hook['interval'] = 1
    if task == 'cls':
        hook['enable'] = True
        hook['out_dir'] = out
    else:
        hook['draw'] = True
        cfg.visualizer['save_dir'] = out
