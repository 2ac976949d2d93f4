"""The golden reference files (tests/data, the authors' code's outputs) and how the model
tests read them."""
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parent / 'data'
GOLDEN_W3 = DATA / 'transnext_reference_w3.pth'
GOLDEN_CLS = DATA / 'transnext_cls_reference.pth'
TOL = 1e-4  # the largest absolute difference from the golden outputs


def load_golden(path):
    """Golden file with weights and inputs cast to float32 (stored exactly as float16)."""
    g = torch.load(path, map_location='cpu')
    g['state_dict'] = {k: v.float() for k, v in g['state_dict'].items()}
    for case in g['cases']:
        case['input'] = case['input'].float()
    return g


def golden_arch(arch):
    """The golden file's arch description as a TransNeXt arch dict."""
    return dict(embed_dims=arch['embed_dims'], num_heads=arch['num_heads'],
                depths=arch['depths'], mlp_ratios=arch['mlp_ratios'],
                sr_ratios=arch['sr_ratios'], window_size=arch['window_size'])


def check_backbone_parity(golden, index):
    """The golden file's case ``index`` through TransNeXt (the golden weights, the case's
    img_size, pretrain_size and position-bias mode): every stage within TOL."""
    from mmtransnext.models import TransNeXt
    case = golden['cases'][index]
    model = TransNeXt(arch=golden_arch(golden['arch']), img_size=case['img_size'],
                      pretrain_size=case['pretrain_size'], pos_bias=case['mode'])
    model.load_state_dict(golden['state_dict'], strict=True)
    model.eval()
    with torch.no_grad():
        outs = model(case['input'])
    assert len(outs) == 4
    for i, (out, ref) in enumerate(zip(outs, case['outputs'])):
        assert out.shape == ref.shape, f'stage {i}'
        err = (out - ref.float()).abs().max().item()
        assert err <= TOL, f'{case["mode"]} {tuple(case["input"].shape)} stage {i}: {err:.2e}'
