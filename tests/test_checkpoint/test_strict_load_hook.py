"""Checkpoints load strictly or not at all (issue 11), the parts on their own: StrictLoadHook
refuses a checkpoint of another arch and loads an official classification checkpoint into a
detector as backbone only; the safe reader refuses a malicious pickle. (The same through
tools/train.py and test.py: tests/test_tools/test_load_errors.py.)"""
import pickle
import re

import pytest
import torch
import torch.nn as nn

from mmtransnext.checkpoint.conversion import mmpretrain_to_imagenet
from mmtransnext.checkpoint.safe_load import UnsafeCheckpointError, load_checkpoint_file
from mmtransnext.checkpoint.state_dict import CheckpointMismatchError
from mmtransnext.checkpoint.strict_load_hook import StrictLoadHook
from mmtransnext.models import TransNeXt

SMALL = dict(embed_dims=[16, 32], num_heads=[1, 2], depths=[1, 2], mlp_ratios=[2, 2],
             sr_ratios=[2, 1], window_size=[3, None])


class Classifier(nn.Module):
    """ImageClassifier's key layout: backbone.*, head.fc.*."""

    def __init__(self, arch=SMALL, num_classes=4):
        super().__init__()
        self.backbone = TransNeXt(arch=arch, img_size=32, out_indices=(0, 1))
        self.head = nn.Module()
        self.head.fc = nn.Linear(arch['embed_dims'][-1], num_classes)


class Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = TransNeXt(arch=SMALL, img_size=32, out_indices=(0, 1))
        self.neck = nn.Conv2d(32, 8, 1)


class FakeRunner:
    def __init__(self, model, resume=False):
        self.model, self._resume, self._load_from = model, resume, 'x.pth'


@pytest.mark.parametrize('reader', ['hook', 'init_cfg'])
def test_checkpoint_of_another_arch(tmp_path, reader):
    """Refused, naming the shape mismatches, both where a whole model loads it (the hook)
    and where the backbone's init_cfg Pretrained loads it."""
    if reader == 'hook':
        other = dict(SMALL, embed_dims=[24, 48], num_heads=[1, 2])
        checkpoint = {'state_dict': Classifier(other).state_dict()}
        with pytest.raises(CheckpointMismatchError,
                           match=r'checkpoint x.pth does not match Classifier: \d+ shape '
                                 r'mismatches \(checkpoint vs model\): backbone\.'):
            StrictLoadHook().after_load_checkpoint(FakeRunner(Classifier()), checkpoint)
    else:
        path = tmp_path / 'tiny.pth'
        torch.save(TransNeXt(arch='tiny').state_dict(), path)
        model = TransNeXt(arch='micro', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
        with pytest.raises(CheckpointMismatchError, match='shape mismatches'):
            model.init_weights()


def test_official_checkpoint_into_a_detector_is_backbone_only():
    official = mmpretrain_to_imagenet(Classifier().state_dict())
    assert 'head.weight' in official
    with pytest.raises(CheckpointMismatchError, match=r'2 model weights missing .*: '
                                                      r'neck\.bias, neck\.weight'):
        StrictLoadHook().after_load_checkpoint(FakeRunner(Detector()), dict(official))
    checkpoint = dict(official)
    StrictLoadHook(allow_partial=True).after_load_checkpoint(FakeRunner(Detector()),
                                                             checkpoint)
    assert list(checkpoint) == ['state_dict']
    loaded = checkpoint['state_dict']
    assert all(k.startswith('backbone.') for k in loaded)
    assert len(loaded) == len(Detector().backbone.state_dict())


class Payload:
    def __reduce__(self):
        return (print, ('unsafe',))


def test_malicious_pickle_refused_without_weights_only_advice(tmp_path):
    path = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'extra': Payload()}, path)
    with pytest.raises(UnsafeCheckpointError) as e:
        load_checkpoint_file(path)
    assert isinstance(e.value, pickle.UnpicklingError)
    # torch >= 2.4 names it as pickled (print), the allow-list unpickler of older torch by
    # its Python 3 module (builtins.print)
    assert re.search(r'pickles the global (builtins\.)?print, which is neither a tensor',
                     str(e.value))
    assert 'weights_only' not in str(e.value)
