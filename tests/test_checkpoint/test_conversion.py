"""Checkpoint layouts the backbone accepts, and the converter."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmtransnext.models import TransNeXt, TransNeXtClassifier
from mmtransnext.checkpoint.conversion import imagenet_to_mmpretrain, mmpretrain_to_imagenet

ROOT = Path(__file__).resolve().parents[2]


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_imagenet_checkpoint_loads_strictly_skipping_head():
    src = TransNeXtClassifier(arch='micro', num_classes=10)
    model = TransNeXt(arch='micro')
    model.load_state_dict(src.state_dict(), strict=True)
    assert all(torch.equal(v, src.state_dict()[k]) for k, v in model.state_dict().items())


def test_pretrained_init_accepts_every_layout(tmp_path):
    src = TransNeXtClassifier(arch='micro', num_classes=10)
    backbone_sd = {k: v for k, v in src.state_dict().items() if not k.startswith('head.')}
    layouts = {
        'imagenet': src.state_dict(),
        'downstream': {'state_dict': {**{f'backbone.{k}': v for k, v in backbone_sd.items()},
                                      'decode_head.conv_seg.weight': torch.zeros(3)}},
        'mmpretrain': {'state_dict': imagenet_to_mmpretrain(src.state_dict())},
    }
    for name, ckpt in layouts.items():
        path = tmp_path / f'{name}.pth'
        torch.save(ckpt, path)
        model = TransNeXt(arch='micro', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
        model.init_weights()
        assert all(torch.equal(v, backbone_sd[k]) for k, v in model.state_dict().items()), name


def test_mmpretrain_key_mapping_round_trips():
    sd = TransNeXtClassifier(arch='micro', num_classes=10).state_dict()
    mm = imagenet_to_mmpretrain(sd)
    assert 'head.fc.weight' in mm and 'backbone.patch_embed1.proj.weight' in mm
    assert mmpretrain_to_imagenet(mm).keys() == sd.keys()


@pytest.mark.e2e  # runs tools/model_converters/transnext2mm.py
def test_converter_tool_imagenet_and_downstream(tmp_path):
    src = TransNeXtClassifier(arch='micro', num_classes=10)
    official = tmp_path / 'official.pth'
    torch.save({'model': src.state_dict()}, official)
    out = tmp_path / 'converted.pth'
    subprocess.run([sys.executable, str(ROOT / 'tools/model_converters/transnext2mm.py'),
                    str(official), str(out)], check=True)
    converted = torch.load(out, map_location='cpu')
    assert converted['meta']['arch'] == 'micro'
    assert mmpretrain_to_imagenet(converted['state_dict']).keys() == src.state_dict().keys()

    downstream = tmp_path / 'upernet_official.pth'
    sd = {f'backbone.{k}': v for k, v in src.state_dict().items() if not k.startswith('head.')}
    torch.save({'state_dict': {**sd, 'decode_head.conv_seg.weight': torch.ones(2)},
                'optimizer': {'state': {}}, 'meta': {'epoch': 3}}, downstream)
    out2 = tmp_path / 'upernet_mm.pth'
    subprocess.run([sys.executable, str(ROOT / 'tools/model_converters/transnext2mm.py'),
                    str(downstream), str(out2)], check=True)
    converted = torch.load(out2, map_location='cpu')
    assert 'optimizer' not in converted
    assert converted['state_dict'].keys() == {**sd, 'decode_head.conv_seg.weight': 0}.keys()


def test_converter_rejects_incomplete_checkpoint(tmp_path):
    sd = TransNeXtClassifier(arch='micro', num_classes=10).state_dict()
    del sd['block2.1.mlp.fc1.weight']
    path = tmp_path / 'broken.pth'
    torch.save(sd, path)
    res = subprocess.run([sys.executable, str(ROOT / 'tools/model_converters/transnext2mm.py'),
                          str(path), str(tmp_path / 'out.pth')], capture_output=True, text=True)
    assert res.returncode != 0
    assert 'block2.1.mlp.fc1.weight' in res.stderr
