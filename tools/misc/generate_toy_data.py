"""Write small synthetic datasets in the real COCO / ADE20K / ImageNet formats.

    python tools/misc/generate_toy_data.py data/toy                 # all three, defaults
    python tools/misc/generate_toy_data.py data/toy --tasks ade20k --num-train 200 \
        --num-val 50 --img-size 128 --seed 0

Output: data/toy/coco (train2017/, val2017/, annotations/instances_*.json),
data/toy/ade20k (images/ and annotations/ {training,validation}),
data/toy/imagenet (train/<class>/, val/<class>/, meta/{train,val}.txt).
Point a config at them with --cfg-options, e.g. for ADE20K:
    train_dataloader.dataset.data_root=data/toy/ade20k
    val_dataloader.dataset.data_root=data/toy/ade20k test_dataloader.dataset.data_root=...
The same seed always gives the same files.
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse

from mmtransnext.datasets.toy import CLASSES, make_all


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='output folder')
    parser.add_argument('--tasks', nargs='+', default=['coco', 'ade20k', 'imagenet'],
                        choices=['coco', 'ade20k', 'imagenet'])
    parser.add_argument('--num-train', type=int, default=None,
                        help='training images (ImageNet: per class)')
    parser.add_argument('--num-val', type=int, default=None,
                        help='validation images (ImageNet: per class)')
    parser.add_argument('--img-size', type=int, default=None, help='square image side')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sizes = {}
    for task in args.tasks:
        kw = {}
        if args.img_size is not None:
            kw['img_size'] = args.img_size
        if task == 'imagenet':
            if args.num_train is not None:
                kw['num_train_per_class'] = args.num_train
            if args.num_val is not None:
                kw['num_val_per_class'] = args.num_val
        else:
            if args.num_train is not None:
                kw['num_train'] = args.num_train
            if args.num_val is not None:
                kw['num_val'] = args.num_val
        sizes[task] = kw
    out = make_all(args.out, args.tasks, seed=args.seed, **sizes)
    for task, path in out.items():
        print(f'{task}: {path}')
    print(f'classes (shape = colour): {", ".join(CLASSES)}')


if __name__ == '__main__':
    main()
