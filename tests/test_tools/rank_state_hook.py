"""Test helper imported through custom_imports: after training, every rank saves its own
weights (and the world size) to ``work_dir/rank<r>_state.pth``."""
import os.path as osp

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class RankStateHook(Hook):

    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        torch.save(dict(world_size=get_world_size(), rank=get_rank(), state_dict=state),
                   osp.join(runner.work_dir, f'rank{get_rank()}_state.pth'))
