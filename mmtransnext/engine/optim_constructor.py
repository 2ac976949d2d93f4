"""Parameter-wise lr / weight-decay multipliers that combine instead of overriding.

mmengine's ``DefaultOptimWrapperConstructor`` applies only the LONGEST custom key that is a
substring of a parameter's name, and then ignores ``norm_decay_mult`` / ``bias_decay_mult``.
TransNeXt's downstream recipes need several rules at once: "backbone lr x0.1" AND "no weight
decay on temperature / query_embedding / relative_pos_bias_local / cpb_fc* / norms /
biases". With the default constructor a backbone ``temperature`` matched by both
``'backbone'`` and ``'temperature'`` gets only one of them; worse, Mask2Former's head key
``'query_embed'`` (lr x1) is longer than ``'backbone'`` and wins for the backbone's
``query_embedding``, silently training it at 10x the intended lr.

Here every matching custom key counts: their ``lr_mult`` and ``decay_mult`` are
multiplied, and the type rules (``norm_decay_mult``, ``bias_decay_mult``,
``dwconv_decay_mult``, ``flat_decay_mult``, ``bias_lr_mult``, ``dcn_offset_lr_mult``) are
multiplied in as well. With only one matching key and no type rule the result equals the
default constructor's.
"""
import logging
from collections import defaultdict
from typing import List, Optional, Union

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.utils.dl_utils import mmcv_full_available
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm, _InstanceNorm

_MULT_KEYS = ('lr_mult', 'decay_mult')
_SHOWN = 4


class TransNeXtOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` whose parameter-wise multipliers combine.

    For a parameter named ``name`` (e.g. ``backbone.block1.0.attn.temperature``):

    * lr = base_lr * prod(lr_mult of every custom key that is a substring of ``name``)
      * bias_lr_mult (biases outside norms and DCN) * dcn_offset_lr_mult (DCN offsets);
    * weight_decay = base_wd * prod(decay_mult of every matching custom key) * the first
      type rule that applies, in mmengine's order: norm_decay_mult (weights and biases of
      norm layers), bias_decay_mult (other biases), dwconv_decay_mult (depthwise convs),
      flat_decay_mult (other 1-D parameters).

    Other entries of a custom key (e.g. ``momentum``) are copied into the parameter group;
    where several matching keys set one, the longest key wins.

    Example::

        optim_wrapper = dict(
            type='OptimWrapper', constructor='TransNeXtOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
            paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0., custom_keys={
                'backbone': dict(lr_mult=0.1), 'temperature': dict(decay_mult=0.)}))
        # backbone.block1.0.attn.temperature: lr 1e-5, weight decay 0
    """

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module: Optional[Union[int, float]] = None) -> None:
        cfg = self.paramwise_cfg
        custom_keys = cfg.get('custom_keys', {})
        # shortest first, so that for copied extra entries the longest key wins
        keys = sorted(sorted(custom_keys), key=len)
        bias_lr_mult = cfg.get('bias_lr_mult', None)
        bias_decay_mult = cfg.get('bias_decay_mult', None)
        norm_decay_mult = cfg.get('norm_decay_mult', None)
        dwconv_decay_mult = cfg.get('dwconv_decay_mult', None)
        flat_decay_mult = cfg.get('flat_decay_mult', None)
        bypass_duplicate = cfg.get('bypass_duplicate', False)
        dcn_offset_lr_mult = cfg.get('dcn_offset_lr_mult', None)

        is_norm = isinstance(module, (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm))
        is_dwconv = isinstance(module, nn.Conv2d) and module.in_channels == module.groups

        for name, param in module.named_parameters(recurse=False):
            full_name = f'{prefix}.{name}' if prefix else name
            group = {'params': [param]}
            if bypass_duplicate and self._is_in(group, params):
                print_log(f'{full_name} is duplicate. It is skipped since '
                          f'bypass_duplicate={bypass_duplicate}',
                          logger='current', level=logging.WARNING)
                continue
            if not param.requires_grad:
                # frozen parameters stay out of the optimizer, as in mmengine
                continue

            lr_mult, decay_mult, extra = 1.0, 1.0, {}
            for key in keys:
                if key in full_name:
                    lr_mult *= custom_keys[key].get('lr_mult', 1.0)
                    decay_mult *= custom_keys[key].get('decay_mult', 1.0)
                    extra.update({k: v for k, v in custom_keys[key].items()
                                  if k not in _MULT_KEYS})

            if name == 'bias' and not (is_norm or is_dcn_module) and bias_lr_mult is not None:
                lr_mult *= bias_lr_mult
            if (is_dcn_module and 'conv_offset' in prefix and isinstance(module, nn.Conv2d)
                    and dcn_offset_lr_mult is not None):
                lr_mult *= dcn_offset_lr_mult

            if is_norm and norm_decay_mult is not None:
                decay_mult *= norm_decay_mult
            elif name == 'bias' and not is_dcn_module and bias_decay_mult is not None:
                decay_mult *= bias_decay_mult
            elif is_dwconv and dwconv_decay_mult is not None:
                decay_mult *= dwconv_decay_mult
            elif param.ndim == 1 and not is_dcn_module and flat_decay_mult is not None:
                decay_mult *= flat_decay_mult

            if self.base_lr is not None:
                group['lr'] = self.base_lr * lr_mult
            if self.base_wd is not None:
                group['weight_decay'] = self.base_wd * decay_mult
            group['lr_mult'] = lr_mult
            group['decay_mult'] = decay_mult
            group.update(extra)
            group['param_name'] = full_name
            params.append(group)

        if mmcv_full_available():
            from mmcv.ops import DeformConv2d, ModulatedDeformConv2d
            is_dcn_module = isinstance(module, (DeformConv2d, ModulatedDeformConv2d))
        else:
            is_dcn_module = False
        for child_name, child in module.named_children():
            child_prefix = f'{prefix}.{child_name}' if prefix else child_name
            self.add_params(params, child, prefix=child_prefix, is_dcn_module=is_dcn_module)

    def __call__(self, model: nn.Module):
        optim_wrapper = super().__call__(model)
        if self.paramwise_cfg:
            self._log_summary(optim_wrapper.optimizer.param_groups)
        return optim_wrapper

    @staticmethod
    def _log_summary(param_groups):
        """One line per distinct (lr_mult, decay_mult): how many tensors, a few names."""
        summary = defaultdict(list)
        for group in param_groups:
            summary[(group.get('lr_mult', 1.0), group.get('decay_mult', 1.0))].append(
                group.get('param_name', '?'))
        lines = []
        for (lr_mult, decay_mult), names in sorted(summary.items()):
            more = f', ... (+{len(names) - _SHOWN})' if len(names) > _SHOWN else ''
            lines.append(f'  lr x{lr_mult:g}, weight decay x{decay_mult:g}: {len(names)} '
                         f'tensors ({", ".join(names[:_SHOWN])}{more})')
        print_log('TransNeXtOptimWrapperConstructor parameter groups:\n' + '\n'.join(lines),
                  logger='current', level=logging.INFO)


def param_group_of(optim_wrapper, name: str) -> dict:
    """The parameter group of the parameter called ``name`` (for checks and tests)."""
    for group in optim_wrapper.optimizer.param_groups:
        if group.get('param_name') == name:
            return group
    raise KeyError(f'no parameter group for {name!r}')


__all__ = ['TransNeXtOptimWrapperConstructor', 'param_group_of']
