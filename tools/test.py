"""Test (and evaluate) a detector, segmentor or classifier checkpoint.

    python tools/test.py <config> <checkpoint>                         # bbox/segm mAP, mIoU, top-1
    python tools/test.py <config> <checkpoint> --aug-test              # multi-scale + flip
    python tools/test.py <config> <checkpoint> --aug-test --pos-bias extrapolate
    tools/dist_test.sh <config> <checkpoint> 8 [--aug-test]

--aug-test: seg, SegTTAModel over the image resized by 0.5, 0.75, 1.0, 1.25, 1.5, 1.75,
each also flipped (or the config's tta_model / tta_pipeline); det, 3 scales x flip
(DetTTAModel, or InstanceSegTTAModel for models with masks); cls, flip averaging.
--pos-bias switches every TransNeXt in the model (also inside the TTA wrapper) to
'interpolate', 'extrapolate' or 'linear' for this run.
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse

from mmengine.config import Config, DictAction

from mmtransnext.checkpoint.strict_load_hook import add_partial_load_argument, use_strict_load
from mmtransnext.cli.cfg_options import merge_cfg_options
from mmtransnext.cli.config_values import check_config_values
from mmtransnext.cli.distributed import (add_launcher_arguments, export_local_rank,
                                         setup_distributed, teardown_distributed)
from mmtransnext.cli.preflight import check_run_inputs, check_writable
from mmtransnext.cli.safe_training import setup_safe_testing
from mmtransnext.cli.task import init_task_scope
from mmtransnext.cli.test_options import enable_visualization, set_pos_bias
from mmtransnext.cli.test_time_aug import apply_tta
from mmtransnext.cli.work_dir import work_dir_from
from mmtransnext.datasets.checked_loading import use_checked_loading_in
from mmtransnext.models.layers import POS_BIAS_MODES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a TransNeXt model (det/seg/cls)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='folder for the log and the metrics file')
    parser.add_argument(
        '--out', help='dump predictions: a .pkl/.pickle file (any task), or for '
        'segmentation a folder that receives prediction PNGs (mmseg style)')
    parser.add_argument('--show-dir', help='draw the predictions into this folder; a '
                        'relative path lies inside the work dir')
    parser.add_argument('--aug-test', action='store_true',
                        help='test-time augmentation: multi-scale + flip')
    parser.add_argument('--pos-bias', choices=POS_BIAS_MODES,
                        help="override the backbone's position-bias mode for this run")
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value')
    parser.add_argument('--no-data-checks', action='store_true',
                        help='load data with the plain transforms (no file named on errors)')
    add_launcher_arguments(parser)
    add_partial_load_argument(parser)
    args = parser.parse_args(argv)
    export_local_rank(args)
    return args


def _is_pickle(out):
    return out.endswith(('.pkl', '.pickle'))


def build_cfg(args):
    if args.out:
        check_writable(args.out, '--out', folder=not _is_pickle(args.out))
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        merge_cfg_options(cfg, args.cfg_options)
    cfg.work_dir = work_dir_from(cfg, args.config, args.work_dir)
    check_writable(cfg.work_dir, '--work-dir', folder=True)
    check_config_values(cfg, ['test_dataloader'])
    cfg.load_from = args.checkpoint
    setup_safe_testing(cfg)  # a run folder of its own
    use_strict_load(cfg, args.partial_load)
    task = init_task_scope(cfg)
    if args.show_dir:
        enable_visualization(cfg, task, args.show_dir)
    if args.aug_test:
        apply_tta(cfg, task)
    if args.out and not _is_pickle(args.out):
        if task != 'seg':
            raise ValueError('--out must be a .pkl/.pickle file (only segmentation '
                             'also accepts a folder)')
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    return cfg, task


def add_dump_metric(runner, task, out):
    if not out or not _is_pickle(out):
        return
    if task == 'det':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
    else:
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=out))


def main(argv=None):
    args = parse_args(argv)
    cfg, task = build_cfg(args)
    check_run_inputs(cfg, ['test_dataloader'])
    setup_distributed(cfg, args.launcher)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if not args.no_data_checks:  # bad files named where they are read
        use_checked_loading_in(runner, cfg, task, ['test_dataloader'])
    if args.pos_bias:
        set_pos_bias(runner.model, args.pos_bias)
    add_dump_metric(runner, task, args.out)
    metrics = runner.test()
    teardown_distributed()
    return metrics


if __name__ == '__main__':
    main()
