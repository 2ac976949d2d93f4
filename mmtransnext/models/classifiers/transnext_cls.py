import torch.nn as nn

from mmtransnext.models.backbones import TransNeXt


class TransNeXtClassifier(TransNeXt):
    """The authors' ImageNet network: the backbone plus ``head`` = Linear(C_last, classes)
    on the mean of the last stage's normed tokens. Loads their checkpoints strictly.

    Args:
        num_classes (int): Classes; 0 gives pooled features (no head). Default: 1000.
        **kwargs: :class:`TransNeXt` arguments. The classifier defaults to
            ``pos_bias='extrapolate'`` (the bias follows the input resolution).
    """

    def __init__(self, num_classes=1000, pos_bias='extrapolate', **kwargs):
        kwargs.setdefault('out_indices', (-1,))
        super().__init__(pos_bias=pos_bias, **kwargs)
        self.num_classes = num_classes
        self.head = nn.Linear(self.embed_dims[-1], num_classes) if num_classes else nn.Identity()
        if num_classes:
            nn.init.trunc_normal_(self.head.weight, std=.02)
            nn.init.zeros_(self.head.bias)

    def forward_features(self, x):
        """Normed tokens [B, N, C_last] of the last stage."""
        self._check_input(x)
        for i in range(self.num_stages):
            tokens, height, width = self.forward_stage(i, x)
            x = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, height, width)
        return tokens

    def forward_head(self, tokens, pre_logits=False):
        pooled = tokens.mean(dim=1)
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))
