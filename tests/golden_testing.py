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
