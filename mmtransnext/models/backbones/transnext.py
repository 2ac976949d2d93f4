import logging
from typing import Sequence

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init, normal_init, trunc_normal_init

from mmtransnext.checkpoint.state_dict import load_backbone_checkpoint
from mmtransnext.models.layers import (AggregatedAttention, CosineMHSA, LogCPB, OverlapPatchEmbed,
                                       PositionBiasSettings, TransNeXtBlock)
from mmtransnext.models.layers.position_bias import check_pos_bias

from .arch_settings import patch_stride, resolve_arch, stage_stride
from .validation import check_backbone_args, check_finite

MIN_INPUT_SIZE = 32


def check_input(x: torch.Tensor, in_channels: int) -> None:
    """Raise a ValueError naming the problem if ``x`` is no [B, in_channels, H, W] image batch
    of at least MIN_INPUT_SIZE pixels per side."""
    if x.dim() != 4:
        raise ValueError(f'TransNeXt expects [B, C, H, W] images, got shape {tuple(x.shape)}')
    if x.shape[0] == 0:
        raise ValueError(f'TransNeXt got an empty batch (input shape {tuple(x.shape)}); '
                         'pass at least one image')
    if x.shape[1] != in_channels:
        raise ValueError(
            f'TransNeXt was built for {in_channels}-channel input but got '
            f'{x.shape[1]} channels; convert the images or set in_channels='
            f'{x.shape[1]} (pre-trained stem weights expect 3).')
    if min(x.shape[-2:]) < MIN_INPUT_SIZE:
        raise ValueError(f'TransNeXt needs inputs of at least {MIN_INPUT_SIZE}x'
                         f'{MIN_INPUT_SIZE} pixels, got {x.shape[-2]}x{x.shape[-1]}; '
                         'resize or pad the images.')


# torch.fx records the check as one call instead of tracing its Python branches on shapes
torch.fx.wrap('check_input')


class TransNeXt(BaseModule):
    """TransNeXt backbone ("TransNeXt: Robust Foveal Visual Perception for Vision
    Transformers", CVPR 2024): aggregated attention and convolutional GLU.

    Parameter names follow the authors' release, so their ImageNet and downstream
    checkpoints load with ``strict=True`` (an ImageNet checkpoint's ``head.*`` is skipped).

    Args:
        arch (str | dict): 'micro' | 'tiny' | 'small' | 'base' | 'micro-aaaa', or a dict
            with embed_dims, num_heads, depths, mlp_ratios, sr_ratios, window_size.
        in_channels (int): Input channels. Default: 3.
        img_size (int | tuple): Image size on which 'interpolate' builds the position bias
            (the fine-tuning size). Default: 224.
        pretrain_size (int): ImageNet pre-training size; fixes the coordinate
            normalisation of the position bias. Default: 224.
        pos_bias (str): 'interpolate' (bias built at ``img_size`` and resized),
            'extrapolate' (built at the input size) or 'linear' (fixed pool size, built at
            the input size). Can be changed later through the ``pos_bias`` attribute.
        fixed_pool_size (int): Pooled grid side in 'linear' mode. Default: 7.
        out_indices (Sequence[int]): Stages whose normed maps are returned.
        qkv_bias (bool): Bias in q / kv / qkv. Default: True.
        drop_rate (float): Dropout in attention projections and MLPs. Default: 0.
        attn_drop_rate (float): Attention dropout. Default: 0.
        drop_path_rate (float): Stochastic depth, increasing linearly over blocks.
        frozen_stages (int): Stages 0..frozen_stages (patch embedding, blocks, norm) are
            frozen and kept in eval mode. -1 freezes nothing. Default: -1.
        with_cp (bool): Activation checkpointing per block. Default: False.
        check_finite (bool): Check the input and every block's output for NaN / Inf and
            raise FloatingPointError naming the stage and block where they first appear
            (a debugging aid: it synchronises once per block). Default: False.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)`` loads a
            checkpoint and raises if it does not cover every backbone weight.
    """

    def __init__(self, arch='tiny', in_channels=3, img_size=224, pretrain_size=224,
                 pos_bias='interpolate', fixed_pool_size=7,
                 out_indices: Sequence[int] = (0, 1, 2, 3), qkv_bias=True, drop_rate=0.,
                 attn_drop_rate=0., drop_path_rate=0., frozen_stages=-1, with_cp=False,
                 check_finite=False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = settings = resolve_arch(arch)
        check_backbone_args(settings, img_size, pretrain_size, fixed_pool_size, drop_rate,
                            attn_drop_rate, drop_path_rate)
        self.check_finite = check_finite
        self.num_stages = len(settings['depths'])
        self.embed_dims = settings['embed_dims']
        self.in_channels = in_channels
        self.out_indices = tuple(i % self.num_stages for i in out_indices)
        if any(not -self.num_stages <= i < self.num_stages for i in out_indices):
            raise ValueError(f'out_indices {tuple(out_indices)} out of range for '
                             f'{self.num_stages} stages')
        if not -1 <= frozen_stages < self.num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {self.num_stages - 1}], '
                             f'got {frozen_stages}')
        self.frozen_stages = frozen_stages
        self.with_cp = with_cp
        self._pos_bias = check_pos_bias(pos_bias)

        num_blocks = sum(settings['depths'])
        # plain Python (not torch.linspace): no tensor, so the model builds on the meta device
        dpr = [drop_path_rate * j / max(num_blocks - 1, 1) for j in range(num_blocks)]
        cur = 0
        for i in range(self.num_stages):
            dim = settings['embed_dims'][i]
            patch_embed = OverlapPatchEmbed(
                in_channels if i == 0 else settings['embed_dims'][i - 1], dim,
                patch_size=7 if i == 0 else 3, stride=patch_stride(i))
            bias_settings = PositionBiasSettings(
                img_size=img_size, pretrain_size=pretrain_size, mode=pos_bias,
                fixed_pool_size=fixed_pool_size, stride=stage_stride(i))
            blocks = nn.ModuleList([
                TransNeXtBlock(dim, settings['num_heads'][i], settings['mlp_ratios'][i],
                               settings['sr_ratios'][i], settings['window_size'][i],
                               bias_settings, qkv_bias=qkv_bias, drop=drop_rate,
                               attn_drop=attn_drop_rate, drop_path=dpr[cur + j])
                for j in range(settings['depths'][i])])
            cur += settings['depths'][i]
            setattr(self, f'patch_embed{i + 1}', patch_embed)
            setattr(self, f'block{i + 1}', blocks)
            setattr(self, f'norm{i + 1}', nn.LayerNorm(dim, eps=1e-6))

        self._register_load_state_dict_pre_hook(self._skip_classifier_head)
        self._init_from_scratch()
        self._freeze_stages()

    # -- position bias mode -------------------------------------------------------------
    @property
    def pos_bias(self) -> str:
        return self._pos_bias

    @pos_bias.setter
    def pos_bias(self, mode: str):
        self._pos_bias = check_pos_bias(mode)
        for m in self.modules():
            if isinstance(m, LogCPB):
                m.pos_bias = mode

    # -- weights --------------------------------------------------------------------------
    def _init_from_scratch(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_init(m, std=.02, bias=0.)
            elif isinstance(m, nn.LayerNorm):
                constant_init(m, 1.0, 0.)
            elif isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                normal_init(m, 0, (2.0 / fan_out) ** 0.5, bias=0.)
            elif isinstance(m, (AggregatedAttention, CosineMHSA)):
                m.reset_parameters()

    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            load_backbone_checkpoint(self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                                     map_location=cfg.get('map_location', 'cpu'))
            self._is_init = True
            return
        self._init_from_scratch()
        if cfg is not None:
            super().init_weights()

    def _skip_classifier_head(self, state_dict, prefix, *args):
        """ImageNet checkpoints carry ``head.*``; a backbone has no head: drop it, say so."""
        if hasattr(self, 'head'):
            return
        head_keys = [k for k in state_dict if k.startswith(prefix + 'head.')]
        for k in head_keys:
            del state_dict[k]
        if head_keys:
            print_log(f'TransNeXt: skipped the classifier head of the checkpoint '
                      f'({", ".join(head_keys)})', logger='current', level=logging.INFO)

    # -- training state -------------------------------------------------------------------
    def _stage_modules(self, i):
        return [getattr(self, f'patch_embed{i + 1}'), getattr(self, f'block{i + 1}'),
                getattr(self, f'norm{i + 1}')]

    def _freeze_stages(self):
        for i in range(self.frozen_stages + 1):
            for m in self._stage_modules(i):
                m.eval()
                for p in m.parameters():
                    p.requires_grad = False

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        return self

    # -- forward --------------------------------------------------------------------------
    def _check_input(self, x):
        """Every forward entry (backbone, classifiers, timm's forward_intermediates) starts
        here: the input's shape, and with ``check_finite`` its values."""
        check_input(x, self.in_channels)
        if self.check_finite:
            check_finite(x, 'in the input images')

    def _run_block(self, block, x, height, width):
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(block, x, height, width, use_reentrant=False)
        return block(x, height, width)

    def forward_stage(self, i, x):
        """Stage i on [B, C, H, W] input; returns its normed tokens and grid size."""
        x, height, width = getattr(self, f'patch_embed{i + 1}')(x)
        for j, block in enumerate(getattr(self, f'block{i + 1}')):
            x = self._run_block(block, x, height, width)
            if self.check_finite:
                check_finite(x, f'in stage {i}, block{i + 1}.{j}')
        return getattr(self, f'norm{i + 1}')(x), height, width

    def forward_stage_map(self, i, x):
        """Stage i on [B, C, H, W] input; returns its normed output as a [B, C_i, H_i, W_i] map."""
        tokens, height, width = self.forward_stage(i, x)
        return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, height, width)

    def forward(self, x):
        self._check_input(x)
        outs = []
        for i in range(self.num_stages):
            x = self.forward_stage_map(i, x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
