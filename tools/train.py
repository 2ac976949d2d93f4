"""Train a detector (mmdet), segmentor (mmseg) or classifier (mmpretrain) from a config.

    python tools/train.py configs/upernet/upernet_transnext_tiny.py
    tools/dist_train.sh <config> 8 [--amp] [--resume]        # several GPUs / machines

The task is read from the config (default_scope, else the model type), so one script
serves mmdet, mmseg and mmpretrain configs. Checkpoints are loaded with torch.load's
weights_only=True; mmengine's own checkpoint contents are allow-listed for it
(mmtransnext/checkpoint/safe_load.py). A run guards itself against NaN losses, a second run in
its work dir, preemption signals, bad data files and bad option values; README.md
("Reliability") lists each guard and the option that switches it off.
"""
from mmtransnext.cli.upstream_warnings import filter_upstream_warnings

filter_upstream_warnings()

import argparse
import copy
import logging
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from mmtransnext.checkpoint.resume_diff import report_config_changes
from mmtransnext.checkpoint.strict_load_hook import add_partial_load_argument, use_strict_load
from mmtransnext.cli.cfg_options import merge_cfg_options
from mmtransnext.cli.config_values import check_config_values
from mmtransnext.cli.distributed import (add_launcher_arguments, export_local_rank,
                                         setup_distributed, teardown_distributed)
from mmtransnext.cli.preflight import check_run_inputs, check_writable
from mmtransnext.cli.safe_training import claim_work_dir, setup_safe_training
from mmtransnext.cli.task import init_task_scope
from mmtransnext.cli.work_dir import work_dir_from
from mmtransnext.datasets.checked_loading import (BadDataError, scan_dataset, use_checked_loading,
                                                  use_checked_loading_in)
from mmtransnext.engine.nonfinite_guard_hook import ACTIONS, DEFAULT_MAX_SKIPS, use_nonfinite_guard
from mmtransnext.engine.preemption_hook import REQUEUE_EXIT_CODE, use_preemption_save

TRAIN_LOADERS = ('train_dataloader', 'val_dataloader')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a TransNeXt model (det/seg/cls)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument('--amp', action='store_true',
                           help='automatic mixed precision (fp16, dynamic loss scaling)')
    precision.add_argument('--bf16', action='store_true',
                           help='automatic mixed precision in bfloat16 (no loss scaling)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from a checkpoint path; without a path, from the latest checkpoint '
        'in the work dir')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='start a new run in a work dir that holds checkpoints of an earlier run (they '
        'are moved into <work_dir>/replaced_<time>/); without it such a run is refused')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by (total batch size / auto_scale_lr.base_batch_size)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. train_cfg.max_iters=1000 '
        'model.backbone.init_cfg=None)')
    parser.add_argument(
        '--nonfinite-guard', choices=ACTIONS,
        help='a NaN/Inf loss stops the run before it reaches the weights (stop, the '
        'default), drops that step (skip, up to --nonfinite-skips times) or is not checked '
        '(off); the config can set nonfinite_guard = dict(action=..., max_skips=...)')
    parser.add_argument('--nonfinite-skips', type=int,
                        help=f'with --nonfinite-guard skip: at most this many steps are '
                        f'dropped (default {DEFAULT_MAX_SKIPS}), the next one stops the run')
    parser.add_argument(
        '--no-preemption-save', action='store_true',
        help='SIGTERM / SIGUSR1 end the run at once (by default the run saves the current '
        f'iteration and exits with status {REQUEUE_EXIT_CODE}, which slurm_train.sh requeues)')
    data = parser.add_mutually_exclusive_group()
    data.add_argument('--check-data', action='store_true',
                      help='read every image and label of the train and val sets before '
                      'training and list every file that is bad (images that do not decode, '
                      'missing labels, labels of another size, label ids outside the classes)')
    data.add_argument('--no-data-checks', action='store_true',
                      help='load data with the plain transforms (no file named on errors)')
    add_launcher_arguments(parser)
    add_partial_load_argument(parser)
    args = parser.parse_args(argv)
    export_local_rank(args)
    return args


def _has_amp_device() -> bool:
    """Whether mmengine's AmpOptimWrapper can start here (it refuses plain CPU)."""
    from mmengine.device import is_cuda_available, is_mlu_available, is_npu_available

    from mmtransnext.compat import is_musa_available
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


def apply_precision(cfg, amp=False, bf16=False, amp_device=None):
    """--amp: AmpOptimWrapper in fp16 with dynamic loss scaling (needs a GPU, NPU, MLU or
    MUSA device). --bf16: AmpOptimWrapper(dtype='bfloat16') on such a device, else
    BF16OptimWrapper, which runs bf16 autocast on CPU."""
    if not (amp or bf16):
        return
    amp_device = _has_amp_device() if amp_device is None else amp_device
    if amp and not amp_device:
        raise SystemExit('--amp (fp16 with loss scaling) needs a GPU, NPU, MLU or MUSA '
                         'device and none is available; on CPU use --bf16')
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') in ('AmpOptimWrapper', 'BF16OptimWrapper'):
        print_log(f'the config already uses {wrapper.type}; --amp/--bf16 replaces it',
                  logger='current', level=logging.WARNING)
    wrapper.pop('dtype', None)
    if amp:
        wrapper.type = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
        return
    wrapper.pop('loss_scale', None)
    if amp_device:
        wrapper.type = 'AmpOptimWrapper'
        wrapper.dtype = 'bfloat16'
    else:
        wrapper.type = 'BF16OptimWrapper'


def apply_auto_scale_lr(cfg, enable):
    if not enable:
        return
    scale = cfg.get('auto_scale_lr')
    if not scale or 'base_batch_size' not in scale:
        raise RuntimeError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the '
                           'config (the total batch size its lr was set for)')
    cfg.auto_scale_lr.enable = True


def apply_resume(cfg, resume):
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume


def build_cfg(args):
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        merge_cfg_options(cfg, args.cfg_options)
    cfg.work_dir = work_dir_from(cfg, args.config, args.work_dir)
    check_writable(cfg.work_dir, '--work-dir', folder=True)
    apply_precision(cfg, args.amp, args.bf16)
    apply_auto_scale_lr(cfg, args.auto_scale_lr)
    check_config_values(cfg, TRAIN_LOADERS)
    apply_resume(cfg, args.resume)
    resumed = setup_safe_training(cfg)  # atomic checkpoints, exact resume, own run folder
    use_nonfinite_guard(cfg, args.nonfinite_guard, args.nonfinite_skips)
    if not args.no_preemption_save:
        use_preemption_save(cfg)
    use_strict_load(cfg, args.partial_load)
    if resumed:
        report_config_changes(resumed, cfg, cfg.load_from)
    return cfg


def check_data(cfg, task, loaders=TRAIN_LOADERS):
    """--check-data: every sample's files read before training; all bad ones listed."""
    cfg = copy.deepcopy(cfg)
    use_checked_loading(cfg, task, loaders)
    problems = scan_dataset(cfg, loaders)
    if problems:
        raise BadDataError(f'--check-data found {len(problems)} problem(s):\n  '
                           + '\n  '.join(problems))
    print_log('--check-data: every image and label of the datasets reads correctly',
              logger='current')


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    claim_work_dir(cfg, args.overwrite)  # one run per work dir, before anything is written
    check_run_inputs(cfg, TRAIN_LOADERS)
    task = init_task_scope(cfg)
    if args.check_data:
        check_data(cfg, task)
    setup_distributed(cfg, args.launcher)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if not args.no_data_checks:  # bad files named where they are read
        use_checked_loading_in(runner, cfg, task, TRAIN_LOADERS)
    runner.train()
    teardown_distributed()
    print_log(f'training done; checkpoints and logs in {osp.abspath(cfg.work_dir)}',
              logger='current')


if __name__ == '__main__':
    main()
