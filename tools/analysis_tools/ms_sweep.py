"""Multi-scale sweep: a checkpoint's metric at several test resolutions in each
position-bias mode, as in the paper's multi-scale figure.

seg / det: the test Resize is set to each short side (the long side keeps its ratio to
it); cls: images are resized to size / 0.875 and centre-cropped to size (resized straight
to size x size where the config has no crop). For every (size, mode) the real test loop
runs. 'linear' fixes the pooled grid at --fixed-pool-size (default: the backbone's
img_size / 32, the pooled grid it was trained with).

Writes <out-dir>/ms_sweep.csv (one row per size and mode), ms_sweep.md (sizes x modes) and
ms_sweep.png (metric against resolution, one line per mode).

Usage: python tools/analysis_tools/ms_sweep.py CONFIG CHECKPOINT --sizes 224 320 448 640
          [--modes interpolate extrapolate linear] [--metric KEY] [--out-dir DIR]
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import copy
import csv
import os

from mmengine.config import Config, DictAction

from mmtransnext.checkpoint.strict_load_hook import use_strict_load
from mmtransnext.cli.cfg_options import merge_cfg_options
from mmtransnext.cli.task import init_task_scope
from mmtransnext.cli.test_options import set_pos_bias
from mmtransnext.cli.test_time_aug import innermost_dataset
from mmtransnext.models.layers import POS_BIAS_MODES

METRIC_KEYS = ('mIoU', 'accuracy/top1', 'coco/bbox_mAP', 'coco/segm_mAP')
CROP_RATIO = 0.875


def resize_test_pipeline(pipeline, size, task):
    """The test pipeline with its resize (and crop) set for resolution ``size``."""
    out, resized = [], False
    for t in copy.deepcopy(pipeline):
        kind = t['type']
        if task == 'cls' and kind in ('ResizeEdge', 'Resize', 'CenterCrop'):
            if not resized:
                has_crop = any(p['type'] == 'CenterCrop' for p in pipeline)
                out += ([dict(type='ResizeEdge', scale=round(size / CROP_RATIO), edge='short'),
                         dict(type='CenterCrop', crop_size=size)] if has_crop
                        else [dict(type='Resize', scale=(size, size))])
                resized = True
            continue
        if task != 'cls' and kind == 'Resize' and not resized:
            long_side, short_side = max(t['scale']), min(t['scale'])
            t = dict(t, scale=(round(long_side * size / short_side), size), keep_ratio=True)
            resized = True
        out.append(t)
    if not resized:
        raise ValueError('no Resize/ResizeEdge/CenterCrop in the test pipeline to sweep')
    return out


def sweep_config(cfg, checkpoint, size, mode, fixed_pool_size, work_dir):
    cfg = copy.deepcopy(cfg)
    task = init_task_scope(cfg)
    dataset = innermost_dataset(cfg.test_dataloader.dataset)
    dataset.pipeline = resize_test_pipeline(dataset.pipeline, size, task)
    cfg.model.backbone.init_cfg = None
    if mode == 'linear':
        cfg.model.backbone.fixed_pool_size = fixed_pool_size
    cfg.load_from = checkpoint
    use_strict_load(cfg)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    return cfg


def run_test(cfg, mode):
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    set_pos_bias(runner.model, mode)
    return runner.test()


def pick_metric(metrics, key=None):
    if key is not None:
        if key not in metrics:
            raise KeyError(f'metric {key!r} not in {sorted(metrics)}')
        return key
    for k in METRIC_KEYS:
        if k in metrics:
            return k
    raise KeyError(f'none of {METRIC_KEYS} in {sorted(metrics)}; pass --metric')


def write_results(rows, metric, sizes, modes, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'ms_sweep.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['size', 'mode', metric])
        writer.writerows(rows)
    value = {(s, m): v for s, m, v in rows}
    lines = ['| size | ' + ' | '.join(modes) + ' |', '|---' * (len(modes) + 1) + '|']
    lines += [f'| {s} | ' + ' | '.join(f'{value[s, m]:.2f}' for m in modes) + ' |'
              for s in sizes]
    with open(os.path.join(out_dir, 'ms_sweep.md'), 'w') as f:
        f.write(f'{metric} by test resolution and position-bias mode\n\n' + '\n'.join(lines)
                + '\n')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for m in modes:
        ax.plot(sizes, [value[s, m] for s in sizes], marker='o', label=m)
    ax.set_xlabel('test resolution (short side, px)')
    ax.set_ylabel(metric)
    ax.set_title('Multi-scale inference by position-bias mode')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, 'ms_sweep.png'))
    plt.close(fig)
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description='Metric by test resolution and bias mode')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--sizes', type=int, nargs='+', required=True)
    parser.add_argument('--modes', nargs='+', choices=POS_BIAS_MODES, default=POS_BIAS_MODES)
    parser.add_argument('--fixed-pool-size', type=int)
    parser.add_argument('--metric')
    parser.add_argument('--out-dir', default='work_dirs/ms_sweep')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        merge_cfg_options(cfg, args.cfg_options)
    img_size = cfg.model.backbone.get('img_size', 224)
    pool = args.fixed_pool_size or max(1, (img_size if isinstance(img_size, int)
                                           else min(img_size)) // 32)
    rows, metric = [], args.metric
    for size in args.sizes:
        for mode in args.modes:
            run_cfg = sweep_config(cfg, args.checkpoint, size, mode, pool,
                                   os.path.join(args.out_dir, 'runs'))
            metrics = run_test(run_cfg, mode)
            metric = pick_metric(metrics, metric)
            rows.append((size, mode, float(metrics[metric])))
            print(f'size {size} {mode}: {metric} = {rows[-1][2]:.2f}', flush=True)
    print(write_results(rows, metric, args.sizes, args.modes, args.out_dir))


if __name__ == '__main__':
    main()
