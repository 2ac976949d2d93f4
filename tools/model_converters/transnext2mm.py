"""Convert the authors' TransNeXt checkpoints to mm checkpoints.

* ImageNet classification checkpoints (official keys + ``head.*``) become mmpretrain
  ImageClassifier checkpoints (``backbone.*``, ``head.fc.*``). The backbone's Pretrained
  init accepts them too, so this is also the file the det/seg configs point at.
* Downstream checkpoints (``state_dict`` with ``backbone.*`` and neck/head keys), also
  training checkpoints mmengine wrote, are stripped of optimizer and message-hub state
  and checked.

The source's ``meta`` (class names, palette, config text, ...) is kept; the converter adds
``arch`` and ``layout`` (and ``num_classes`` for ImageNet checkpoints) to it.

Every backbone weight is checked against a TransNeXt of the detected variant; a missing,
unexpected or mis-shaped key stops the conversion with the list of offending keys.

Usage: python tools/model_converters/transnext2mm.py SRC DST
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import pickle
import sys

import torch

from mmtransnext.checkpoint.conversion import imagenet_to_mmpretrain, is_imagenet_layout
from mmtransnext.checkpoint.safe_load import load_checkpoint_file
from mmtransnext.checkpoint.state_dict import (CheckpointMismatchError, backbone_state_dict,
                                               check_state_dict, unwrap_state_dict)
from mmtransnext.models import TransNeXt, TransNeXtClassifier
from mmtransnext.models.backbones.arch_settings import infer_arch


def _meta(checkpoint, **ours):
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return {**(meta if isinstance(meta, dict) else {}), **ours}


def convert(checkpoint, source):
    sd = unwrap_state_dict(checkpoint)
    if is_imagenet_layout(sd):
        arch = infer_arch(sd)
        num_classes = sd['head.weight'].shape[0] if 'head.weight' in sd else 0
        check_state_dict(TransNeXtClassifier(arch=arch, num_classes=num_classes), sd, source)
        return {'state_dict': imagenet_to_mmpretrain(sd),
                'meta': _meta(checkpoint, arch=arch, layout='mmpretrain',
                              num_classes=num_classes)}
    backbone = backbone_state_dict(sd)
    arch = infer_arch(backbone)
    check_state_dict(TransNeXt(arch=arch), backbone, source)
    return {'state_dict': sd, 'meta': _meta(checkpoint, arch=arch, layout='downstream')}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help="the authors' checkpoint")
    parser.add_argument('dst', help='where to write the mm checkpoint')
    args = parser.parse_args()
    try:
        checkpoint = load_checkpoint_file(args.src, map_location='cpu')
        converted = convert(checkpoint, args.src)
    except (CheckpointMismatchError, ValueError, OSError, pickle.UnpicklingError) as e:
        sys.exit(f'transnext2mm: {e}')
    torch.save(converted, args.dst)
    meta = converted['meta']
    print(f'{args.src} -> {args.dst}: TransNeXt-{meta["arch"]}, {meta["layout"]} layout, '
          f'{len(converted["state_dict"])} tensors')


if __name__ == '__main__':
    main()
