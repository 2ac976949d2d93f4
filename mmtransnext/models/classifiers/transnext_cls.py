from typing import Optional

import torch.nn as nn

from mmtransnext.models.backbones import TransNeXt

# Parameters trained without weight decay besides norms and biases; configs/_base_/
# transnext_optim.py lists the same names (mmengine matches them as substrings).
NO_WEIGHT_DECAY_KEYS = ('temperature', 'query_embedding', 'relative_pos_bias_local',
                        'cpb_fc1', 'cpb_fc2')
GLOBAL_POOLS = ('avg', '')


def _check_global_pool(global_pool: str) -> str:
    if global_pool not in GLOBAL_POOLS:
        raise ValueError(f"global_pool must be 'avg' (mean over the last stage's map) or '' "
                         f'(no pooling), got {global_pool!r}')
    return global_pool


class TransNeXtClassifier(TransNeXt):
    """The authors' ImageNet network: the backbone plus ``head`` = Linear(C_last, classes)
    on the mean of the last stage's normed map. Loads their checkpoints strictly.

    Args:
        num_classes (int): Classes; 0 gives pooled features (no head). Default: 1000.
        global_pool (str): 'avg' or '' (``forward`` then returns the last stage's map
            when ``num_classes`` is 0). Default: 'avg'.
        head_drop_rate (float): Dropout before the head. Default: 0.
        **kwargs: :class:`TransNeXt` arguments. The classifier defaults to
            ``pos_bias='extrapolate'`` (the bias follows the input resolution).
    """

    def __init__(self, num_classes=1000, global_pool='avg', head_drop_rate=0.,
                 pos_bias='extrapolate', **kwargs):
        kwargs.setdefault('out_indices', (-1,))
        super().__init__(pos_bias=pos_bias, **kwargs)
        self.num_features = self.head_hidden_size = self.embed_dims[-1]
        self.global_pool = _check_global_pool(global_pool)
        self.head_drop = nn.Dropout(head_drop_rate)
        self.reset_classifier(num_classes)

    # -- head -------------------------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None):
        """A new head for ``num_classes`` (0: none) on the device and dtype of the model."""
        if global_pool is not None:
            self.global_pool = _check_global_pool(global_pool)
        self.num_classes = num_classes
        if num_classes:
            weight = self.patch_embed1.proj.weight
            self.head = nn.Linear(self.num_features, num_classes, device=weight.device,
                                  dtype=weight.dtype)
            nn.init.trunc_normal_(self.head.weight, std=.02)
            nn.init.zeros_(self.head.bias)
        else:
            self.head = nn.Identity()
        self.head.train(self.training)

    # -- optimizer and training helpers -----------------------------------------------------
    def no_weight_decay(self):
        """fnmatch patterns (timm's optimizer factory) of the parameters without decay."""
        return {f'*{key}*' for key in NO_WEIGHT_DECAY_KEYS}

    def group_matcher(self, coarse=False):
        """Parameter groups for layer-wise lr decay: stem, stage (coarse) or block, head."""
        if coarse:
            return dict(stem=r'^patch_embed1\.', blocks=r'^(?:patch_embed|block|norm)(\d+)\.')
        return dict(stem=r'^patch_embed1\.',
                    blocks=[(r'^patch_embed(\d+)\.', (0,)), (r'^block(\d+)\.(\d+)\.', None),
                            (r'^norm(\d+)\.', (99999,))])

    def set_grad_checkpointing(self, enable=True):
        self.with_cp = enable

    # -- forward ----------------------------------------------------------------------------
    def forward_features(self, x):
        """The last stage's normed map [B, C_last, H/32, W/32]."""
        self._check_input(x)
        for i in range(self.num_stages):
            x = self.forward_stage_map(i, x)
        return x

    def forward_head(self, x, pre_logits: bool = False):
        if self.global_pool == 'avg':
            x = x.mean(dim=(2, 3))
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))
