"""The multiply-add count of tools/analysis_tools/get_flops.py and the benchmark's "x floor"
against a count by hand."""
import os

import torch

from mmtransnext.analysis.flops import count_flops


def test_count_flops_matches_hand_count_for_one_block():
    from mmtransnext.models.layers import (COORDINATE_CACHE, PositionBiasSettings,
                                           TransNeXtBlock)

    C, heads, k, sr, H, W, ratio = 48, 2, 3, 8, 16, 24, 8
    block = TransNeXtBlock(C, heads, ratio, sr, k, PositionBiasSettings(
        img_size=(64, 96), pretrain_size=224, mode='extrapolate', stride=4)).eval()

    class OneBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = block

        def forward(self, x):
            return self.block(x, H, W)

    before = os.environ.get('MMTRANSNEXT_OPS')
    flops, params = count_flops(OneBlock(), (torch.randn(1, H * W, C),))
    assert os.environ.get('MMTRANSNEXT_OPS') == before  # the torch-path override is scoped
    N, P, hidden = H * W, (H // sr) * (W // sr), int(2 * C * ratio / 3)
    vh, vw, _, _ = COORDINATE_CACHE.get((H, W), (H // sr, W // sr), 224 // 4,
                                        torch.device('cpu'))
    hand = (N * C * C              # q
            + N * C * 2 * C        # kv
            + N * C * C            # sr (1x1 conv)
            + P * C * 2 * C        # kv of the pooled tokens
            + 2 * N * k * k * C    # window similarity and weighted sum
            + N * C * k * k        # q @ learnable_tokens
            + 2 * N * P * C        # pooled similarity and weighted sum
            + N * C * C            # proj
            + (len(vh) + len(vw)) * 512  # log-CPB fc1, per axis
            + len(vh) * len(vw) * 512 * heads  # log-CPB fc2 on the distinct coordinates
            + N * C * 2 * hidden + N * hidden * 9 + N * hidden * C  # ConvGLU
            + 5 * (2 * N + P) * C)  # three LayerNorms
    assert abs(flops - hand) / hand < 0.05, (flops, hand)
    assert params == sum(p.numel() for p in block.parameters())
