"""The log-CPB MLP as evaluated (fc1 per axis, chunked rows, recomputed in backward) equals
the plain cpb_fc2(ReLU(cpb_fc1(coordinates))) on the full coordinate grid, values and
gradients, with one chunk and with many. In float64: the two orders of summation round
differently, and in float32 a ReLU input a few ulps from zero can fall on either side."""
import pytest
import torch
import torch.nn.functional as F

from mmtransnext.models.layers import position_bias
from mmtransnext.models.layers.position_bias import COORDINATE_CACHE, LogCPB


@pytest.mark.parametrize('chunk_elements', [1 << 21, 512 * 7])
def test_cpb_table_matches_the_plain_mlp(chunk_elements, monkeypatch):
    monkeypatch.setattr(position_bias, 'MLP_CHUNK_ELEMENTS', chunk_elements)
    torch.manual_seed(0)
    cpb = LogCPB(num_heads=3, sr_ratio=4, stride=8, img_size=(96, 128),
                 pretrain_size=224).double()
    vh, vw, _, _ = COORDINATE_CACHE.get((12, 16), (3, 4), cpb.pretrain_tokens,
                                        torch.device('cpu'))
    vh, vw = vh.double(), vw.double()
    params = list(cpb.parameters())

    table = cpb.cpb_table(vh, vw)
    grads = torch.autograd.grad(table.sin().sum(), params)

    coords = torch.stack(torch.meshgrid(vh, vw, indexing='ij'), dim=-1)
    plain = cpb.cpb_fc2(F.relu(cpb.cpb_fc1(coords))).permute(2, 0, 1)
    plain_grads = torch.autograd.grad(plain.sin().sum(), params)

    assert table.shape == (3, len(vh), len(vw))
    assert table.dtype == torch.float64
    torch.testing.assert_close(table, plain, rtol=1e-10, atol=1e-10)
    for g, p in zip(grads, plain_grads):
        torch.testing.assert_close(g, p, rtol=1e-10, atol=1e-10)
