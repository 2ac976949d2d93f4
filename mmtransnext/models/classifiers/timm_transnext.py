"""TransNeXt for timm: ``timm.create_model('transnext_tiny', ...)`` after ``import mmtransnext``.

Paper: `TransNeXt: Robust Foveal Visual Perception for Vision Transformers` (CVPR 2024).

No weights can be downloaded: ``pretrained=True`` loads the file named by
``pretrained_cfg_overlay=dict(file=...)`` (the authors' ImageNet checkpoint or an mmpretrain
one converted by tools/model_converters/transnext2mm.py); ``checkpoint_path=`` loads the same
files. ``features_only=True`` gives the four stage maps (NCHW) through ``forward_intermediates``.

torch.fx traces the model with both attentions and the ConvGLU as leaf modules (registered
below), so a traced model runs them as the eager one does (the fused CPU ops included) and
gives the same numbers.
TorchScript cannot compile the attentions (their position-bias grids and window geometry
are cached in Python objects): the model is not scriptable.
"""
from contextlib import nullcontext
from typing import List, Optional, Tuple, Union

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._builder import resolve_pretrained_cfg
from timm.models._features import feature_take_indices

from mmtransnext.checkpoint.conversion import mmpretrain_to_imagenet
from mmtransnext.checkpoint.state_dict import unwrap_state_dict
from mmtransnext.compat import timm_register_notrace_module
from mmtransnext.models.backbones.arch_settings import stage_stride
from mmtransnext.models.layers import AggregatedAttention, ConvolutionalGLU, CosineMHSA

from .transnext_cls import TransNeXtClassifier

__all__ = ['TimmTransNeXt']

# the attentions branch on grid sizes in Python, the ConvGLU on the fused gate's dispatch:
# fx keeps them as calls
for _leaf in (AggregatedAttention, CosineMHSA, ConvolutionalGLU):
    timm_register_notrace_module()(_leaf)


class TimmTransNeXt(TransNeXtClassifier):
    """:class:`TransNeXtClassifier` with timm's constructor arguments and feature API.

    Args:
        arch (str | dict): TransNeXt variant (see :class:`TransNeXt`).
        in_chans (int): Input channels.
        num_classes (int): Classes of the head; 0: no head.
        global_pool (str): 'avg' or '' (no pooling).
        img_size (int | tuple): Size on which 'interpolate' builds the position bias.
        pretrain_size (int): Size fixing the position-bias coordinate normalisation.
        pos_bias (str): 'extrapolate' (bias built at the input size), 'interpolate' or
            'linear'.
        fixed_pool_size (int): Pooled grid side in 'linear' mode.
        qkv_bias (bool): Bias in the q / kv / qkv projections.
        drop_rate (float): Dropout before the classifier (timm's meaning).
        proj_drop_rate (float): Dropout in attention projections and MLPs (the authors'
            ``drop_rate``).
        attn_drop_rate (float): Attention dropout.
        drop_path_rate (float): Stochastic depth, increasing linearly over the blocks.
        device, dtype: Where and in which dtype the parameters are created.
    """

    def __init__(self, arch='tiny', in_chans=3, num_classes=1000, global_pool='avg',
                 img_size=224, pretrain_size=224, pos_bias='extrapolate', fixed_pool_size=7,
                 qkv_bias=True, drop_rate=0., proj_drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0., device=None, dtype=None):
        with torch.device(device) if device is not None else nullcontext():
            super().__init__(
                arch=arch, in_channels=in_chans, num_classes=num_classes,
                global_pool=global_pool, head_drop_rate=drop_rate, img_size=img_size,
                pretrain_size=pretrain_size, pos_bias=pos_bias,
                fixed_pool_size=fixed_pool_size, qkv_bias=qkv_bias, drop_rate=proj_drop_rate,
                attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate)
        if dtype is not None:
            self.to(dtype=dtype)
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.drop_path_rate = drop_path_rate
        self.feature_info = [dict(num_chs=dim, reduction=stage_stride(i), module=f'norm{i + 1}')
                             for i, dim in enumerate(self.embed_dims)]
        self._register_load_state_dict_pre_hook(self._accept_mmpretrain_layout)

    def _accept_mmpretrain_layout(self, state_dict, prefix, *args):
        """``checkpoint_path=`` bypasses the pretrained filter: map mmpretrain keys here."""
        if prefix or not any(k.startswith('backbone.') for k in state_dict):
            return
        converted = mmpretrain_to_imagenet(state_dict)
        state_dict.clear()
        state_dict.update(converted)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """The normed stage maps selected by ``indices`` (and the final map).

        Every stage ends in its own norm, so ``norm`` changes nothing.
        """
        assert output_fmt == 'NCHW', 'Output shape must be NCHW.'
        take_indices, max_index = feature_take_indices(self.num_stages, indices)
        self._check_input(x)
        intermediates = []
        for i in range(max_index + 1 if stop_early else self.num_stages):
            x = self.forward_stage_map(i, x)
            if i in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ):
        """Remove the stages after the last of ``indices``; the stage norms stay (they
        produce the features)."""
        take_indices, max_index = feature_take_indices(self.num_stages, indices)
        prune_end = max_index < self.num_stages - 1
        for i in range(max_index + 1, self.num_stages):
            for module in ('patch_embed', 'block', 'norm'):
                delattr(self, f'{module}{i + 1}')
        self.num_stages = max_index + 1
        if prune_end:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]['num_chs']
        if prune_head or prune_end:
            self.reset_classifier(0, '')
        return take_indices


def checkpoint_filter_fn(state_dict, model):
    """The authors' ImageNet checkpoints (their names are the model's) and mmpretrain ones
    (``backbone.*``, ``head.fc.*``) -> model keys."""
    state_dict = unwrap_state_dict(state_dict)
    if any(k.startswith('backbone.') for k in state_dict):
        state_dict = mmpretrain_to_imagenet(state_dict)
    return state_dict


def _check_weights_source(variant, pretrained_cfg, pretrained_cfg_overlay):
    cfg = resolve_pretrained_cfg(variant, pretrained_cfg, pretrained_cfg_overlay)
    if not (cfg.file or cfg.state_dict):
        raise ValueError(
            f'{variant}: no TransNeXt weights can be downloaded; pass a local file: '
            f"timm.create_model('{variant}', pretrained=True, pretrained_cfg_overlay="
            "dict(file='transnext_..._1k.pth')) or checkpoint_path='transnext_..._1k.pth' "
            '(the authors\' ImageNet checkpoint or one converted by '
            'tools/model_converters/transnext2mm.py).')


def _create_transnext(variant, pretrained=False, **kwargs):
    if pretrained:
        _check_weights_source(variant, kwargs.get('pretrained_cfg'),
                              kwargs.get('pretrained_cfg_overlay'))
    out_indices = kwargs.pop('out_indices', (0, 1, 2, 3))
    return build_model_with_cfg(
        TimmTransNeXt,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls='getter'),
        **kwargs,
    )


def _cfg(**kwargs):
    return {
        'url': '', 'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7),
        'crop_pct': 0.875, 'interpolation': 'bicubic',
        'mean': IMAGENET_DEFAULT_MEAN, 'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'patch_embed1.proj', 'classifier': 'head', 'fixed_input_size': False,
        'paper_ids': 'arXiv:2311.17132',
        'paper_name': 'TransNeXt: Robust Foveal Visual Perception for Vision Transformers',
        **kwargs,
    }


# Evaluation as configs/transnext/: 224 -> resize 256, centre crop; 384 fine-tuned ->
# resize to 384 x 384 (no crop); micro-aaaa, trained at 256 -> resize 292, centre crop.
_CFG_384 = dict(input_size=(3, 384, 384), pool_size=(12, 12), crop_pct=1.0, crop_mode='squash')

default_cfgs = generate_default_cfgs({
    'transnext_micro.in1k': _cfg(),
    'transnext_tiny.in1k': _cfg(),
    'transnext_small.in1k': _cfg(),
    'transnext_small.in1k_384': _cfg(**_CFG_384),
    'transnext_base.in1k': _cfg(),
    'transnext_base.in1k_384': _cfg(**_CFG_384),
    'transnext_micro_aaaa.in1k': _cfg(input_size=(3, 256, 256), pool_size=(8, 8),
                                      crop_pct=256 / 292),
})


@register_model
def transnext_micro(pretrained=False, **kwargs) -> TimmTransNeXt:
    model_args = dict(arch='micro')
    return _create_transnext('transnext_micro', pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def transnext_tiny(pretrained=False, **kwargs) -> TimmTransNeXt:
    model_args = dict(arch='tiny')
    return _create_transnext('transnext_tiny', pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def transnext_small(pretrained=False, **kwargs) -> TimmTransNeXt:
    model_args = dict(arch='small')
    return _create_transnext('transnext_small', pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def transnext_base(pretrained=False, **kwargs) -> TimmTransNeXt:
    model_args = dict(arch='base')
    return _create_transnext('transnext_base', pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def transnext_micro_aaaa(pretrained=False, **kwargs) -> TimmTransNeXt:
    model_args = dict(arch='micro-aaaa', img_size=256)
    return _create_transnext(
        'transnext_micro_aaaa', pretrained=pretrained, **dict(model_args, **kwargs))
