"""Parity with the authors' reference implementation (tests/data/golden_README.md): 1e-4 max-abs."""
import pytest
import torch

from mmtransnext.models import TransNeXt
from golden_testing import TOL, golden_arch


def _backbone(golden, case):
    model = TransNeXt(arch=golden_arch(golden['arch']), img_size=case['img_size'],
                      pretrain_size=case['pretrain_size'], pos_bias=case['mode'])
    model.load_state_dict(golden['state_dict'], strict=True)
    return model.eval()


@pytest.mark.parametrize('index', range(4))
def test_backbone_matches_reference(golden_w3, index):
    case = golden_w3['cases'][index]
    model = _backbone(golden_w3, case)
    with torch.no_grad():
        outs = model(case['input'])
    assert len(outs) == 4
    for i, (out, ref) in enumerate(zip(outs, case['outputs'])):
        assert out.shape == ref.shape, f'stage {i}'
        err = (out - ref.float()).abs().max().item()
        assert err <= TOL, f'{case["mode"]} {tuple(case["input"].shape)} stage {i}: {err:.2e}'
