"""Helpers of the tests that run tools/: small override configs that inherit the real
configs, running tools/ as subprocesses or loading them by path. The session fixtures that
use them (toy data, one short classification training) are in tests/conftest.py.

The override configs keep every code path of the real config (its model type, neck, heads,
losses, data set class, evaluator, optimizer constructor) and only shrink it: TransNeXt
micro without drop path and without pre-trained weights, 64-128 px toy images, a few
samples, a few iterations, fewer decoder layers where a head has many.
"""
import ast
import os
import socket
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from mmtransnext.datasets.toy import CLASSES  # noqa: F401 (for the tests)
from mmtransnext.cli.work_dir import read_test_metrics as read_metrics

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'configs'
TOOLS = ROOT / 'tools'
# the hooks the tool subprocesses import by name (custom_imports): kill_hook, ...
HOOKS_DIR = Path(__file__).resolve().parent / 'test_tools'
MICRO_DIMS = [48, 96, 192, 384]


# read by tools/*.sh, torchrun or torch.distributed: a value set on the machine running the
# tests must not change how the tools under test launch
LAUNCHER_VARS = ('MASTER_ADDR', 'MASTER_PORT', 'PORT', 'NNODES', 'NODE_RANK', 'RANK',
                 'LOCAL_RANK', 'WORLD_SIZE', 'GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK',
                 'SRUN_ARGS')


def tool_env(threads=1, **extra):
    """Environment of the tool subprocesses. One thread each: the workloads are tiny, and
    two OpenMP threads on a 2-core machine that runs anything else spin-wait badly
    (measured 2.6x slower than one thread)."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONUNBUFFERED='1', PYTHONPATH=os.pathsep.join(
                   [str(HOOKS_DIR), str(ROOT)] + ([env['PYTHONPATH']] if env.get('PYTHONPATH')
                                             else [])))
    env.update(extra)
    return env


def fail_with_output(cmd, proc):
    """Fail the test, showing the command, its exit code and the end of its output."""
    pytest.fail(f'{" ".join(map(str, cmd))} exited with {proc.returncode}:\n'
                f'{proc.stdout[-6000:]}', pytrace=False)


def run(cmd, timeout=600, env=None, expect_ok=True):
    """Run ``cmd`` from the repository root; on failure show the end of its output."""
    proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env or tool_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    if expect_ok and proc.returncode != 0:
        fail_with_output(cmd, proc)
    return proc


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# A gloo rank that aborts in C++ teardown after its run finished (seen once in about 70 runs
# of dist_test.sh on torch 2.12, after teardown_distributed's barrier; not reproduced with
# faulthandler on): torchrun then reports the run as failed.
TEARDOWN_ABORT = 'terminate called without an active exception'


def run_on_a_free_port(cmd, env, attempts=3):
    """Run a torchrun script; another process may take the port between our pick and
    torchrun's bind, so an address-in-use failure is retried on a new port, and so is,
    once and with a warning, the teardown abort above."""
    aborts = 0
    for _ in range(attempts):
        proc = run(cmd, env={**env, 'PORT': str(_free_port()), 'PYTHONFAULTHANDLER': '1'},
                   expect_ok=False)
        if proc.returncode == 0:
            return proc
        if TEARDOWN_ABORT in proc.stdout and aborts == 0:
            aborts += 1
            warnings.warn(f'{cmd[1]}: a rank aborted in teardown ({TEARDOWN_ABORT!r}); run '
                          f'again. Its output:\n{proc.stdout[-3000:]}')
            continue
        if 'address already in use' not in proc.stdout.lower():
            break
    fail_with_output(cmd, proc)


def train(config, work_dir, *extra, **kw):
    return run([sys.executable, TOOLS / 'train.py', config, '--work-dir', work_dir, *extra],
               **kw)


def test_tool(config, checkpoint, work_dir, *extra, **kw):
    """tools/test.py; returns (metrics dict from the run's json log, process)."""
    proc = run([sys.executable, TOOLS / 'test.py', config, checkpoint, '--work-dir', work_dir,
                *extra], **kw)
    return read_metrics(work_dir), proc


test_tool.__test__ = False  # not a test itself


def load_tool(name):
    """tools/<name>.py (``name`` may hold a folder: 'analysis_tools/check_ops') imported
    by its path as a module, without touching sys.path (its main / build_cfg run
    in-process)."""
    import importlib.util
    module_name = 'tools_' + name.replace('/', '_')
    spec = importlib.util.spec_from_file_location(module_name, TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_config(path, *parts, **fmt):
    """Write the (each dedented) ``parts`` formatted with ``fmt`` to ``path``."""
    path = Path(path)
    text = '\n'.join(textwrap.dedent(part).strip('\n') for part in parts) + '\n'
    text = text.format(**fmt)
    names = [t.id for node in ast.parse(text).body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)]
    twice = {n for n in names if names.count(n) > 1}
    assert not twice, f'{path.name} assigns {twice} twice (the later would win)'
    path.write_text(text)
    return path


# ---------------------------------------------------------------- override configs
COMMON = '''
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False)
'''

DET_DATA = '''
metainfo = dict(classes={classes!r})
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{root}/', metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{root}/', metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file='{root}/annotations/instances_val2017.json')
test_evaluator = val_evaluator
# one epoch over the few toy images; no validation while training
train_cfg = dict(max_epochs=1, val_interval=10)
default_hooks = dict(logger=dict(interval=1))
'''


def mask_rcnn_config(tmp_path, coco_root, base='mask_rcnn/mask-rcnn_transnext_tiny.py'):
    return write_config(tmp_path / 'mask_rcnn_small.py', '''
        _base_ = '{base}'
        model = dict(
            backbone=dict(arch='micro', img_size=128, drop_path_rate=0.0, init_cfg=None),
            neck=dict(in_channels={dims}),
            roi_head=dict(bbox_head=dict(num_classes=4), mask_head=dict(num_classes=4)),
            # fewer proposals / sampled RoIs / detections: the heads dominate CPU time
            train_cfg=dict(rpn_proposal=dict(nms_pre=200, max_per_img=100),
                           rcnn=dict(sampler=dict(num=64))),
            test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100),
                          rcnn=dict(max_per_img=20)))
        train_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='Resize', scale=(128, 128), keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackDetInputs'),
        ]
        test_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(128, 128), keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                  'img_shape', 'scale_factor')),
        ]''', DET_DATA, COMMON, base=CONFIGS / base, dims=MICRO_DIMS, root=coco_root,
        classes=CLASSES)


def dino_config(tmp_path, coco_root, scales):
    """DINO with 100 queries instead of 900: two-stage DINO picks its queries among the
    encoder tokens, so 900 queries would need >= 256 px images; 100 fit 128 px."""
    base = CONFIGS / f'dino/dino-{scales}scale_transnext_tiny.py'
    neck = MICRO_DIMS if scales == 5 else MICRO_DIMS[1:]
    return write_config(tmp_path / f'dino{scales}_small.py', '''
        _base_ = '{base}'
        model = dict(
            num_queries=100,
            backbone=dict(arch='micro', img_size=128, drop_path_rate=0.0, init_cfg=None),
            neck=dict(in_channels={neck}),
            encoder=dict(num_layers=1),
            decoder=dict(num_layers=1),
            bbox_head=dict(num_classes=4),
            test_cfg=dict(max_per_img=100))
        train_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='Resize', scale=(128, 128), keep_ratio=True),
            dict(type='PackDetInputs'),
        ]
        test_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(128, 128), keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                  'img_shape', 'scale_factor')),
        ]''', DET_DATA, COMMON, base=base, neck=neck, root=coco_root, classes=CLASSES)


SEG_DATA = '''
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(64, 64), ratio_range=(1.0, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True, seed=0),
    dataset=dict(data_root='{root}', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{root}', pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=1000)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=2))
'''


def upernet_config(tmp_path, ade_root):
    base = CONFIGS / 'upernet/upernet_transnext_tiny.py'
    return write_config(tmp_path / 'upernet_small.py', '''
        _base_ = '{base}'
        model = dict(
            data_preprocessor=dict(size=(64, 64)),
            backbone=dict(arch='micro', img_size=64, drop_path_rate=0.0, init_cfg=None),
            decode_head=dict(in_channels={dims}, channels=32),
            auxiliary_head=dict(in_channels={dims[2]}, channels=16))''', SEG_DATA, COMMON,
        base=base, dims=MICRO_DIMS, root=ade_root)


def mask2former_config(tmp_path, ade_root):
    base = CONFIGS / 'mask2former/mask2former_transnext_tiny.py'
    return write_config(tmp_path / 'mask2former_small.py', '''
        _base_ = '{base}'
        model = dict(
            data_preprocessor=dict(size=(64, 64)),
            backbone=dict(arch='micro', img_size=64, drop_path_rate=0.0, init_cfg=None),
            decode_head=dict(
                in_channels={dims},
                pixel_decoder=dict(encoder=dict(num_layers=1)),
                transformer_decoder=dict(num_layers=1),
                train_cfg=dict(num_points=1024)))''', SEG_DATA, COMMON,
        base=base, dims=MICRO_DIMS, root=ade_root)


CLS_DATA = '''
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
    dataset=dict(data_root='{root}', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{root}', pipeline=test_pipeline))
test_dataloader = val_dataloader
'''


def cls_config(tmp_path, imagenet_root, deterministic=False, name='cls_small.py', extra=''):
    """Micro classifier at 64 px. ``deterministic``: no random augmentation, no Mixup, an
    iteration-based loop and schedule (the resume test compares weights bit for bit)."""
    base = CONFIGS / 'transnext/transnext_tiny.py'
    if deterministic:
        pipelines = '''
            train_pipeline = [
                dict(type='LoadImageFromFile'),
                dict(type='ResizeEdge', scale=64, edge='short'),
                dict(type='CenterCrop', crop_size=64),
                dict(type='PackInputs'),
            ]
            test_pipeline = train_pipeline
            train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=4,
                             val_interval=1000)
            param_scheduler = [
                dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2),
                dict(type='CosineAnnealingLR', by_epoch=False, begin=2, end=4, eta_min=1e-5),
            ]
            default_hooks = dict(logger=dict(interval=1),
                                 checkpoint=dict(by_epoch=False, interval=2))
            log_processor = dict(by_epoch=False)'''
    else:
        pipelines = '''
            train_pipeline = [
                dict(type='LoadImageFromFile'),
                dict(type='RandomResizedCrop', scale=64, backend='pillow',
                     interpolation='bicubic'),
                dict(type='RandomFlip', prob=0.5, direction='horizontal'),
                dict(type='PackInputs'),
            ]
            # crop ratio 0.875, as the real config
            test_pipeline = [
                dict(type='LoadImageFromFile'),
                dict(type='ResizeEdge', scale=73, edge='short', backend='pillow',
                     interpolation='bicubic'),
                dict(type='CenterCrop', crop_size=64),
                dict(type='PackInputs'),
            ]
            train_cfg = dict(max_epochs=1, val_interval=10)
            # the real warmup (5 epochs) + cosine would not fit in one epoch
            param_scheduler = [
                dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=1,
                     convert_to_iter_based=True)]
            default_hooks = dict(logger=dict(interval=1))'''
    # deterministic: no Mixup / CutMix (they draw random numbers in the model)
    model_extra = ',\n    train_cfg=dict(_delete_=True)' if deterministic else ''
    return write_config(tmp_path / name, '''
        _base_ = '{base}'
        model = dict(
            backbone=dict(arch='micro', img_size=64, drop_path_rate=0.0),
            head=dict(in_channels=384){model_extra})''', pipelines, CLS_DATA, COMMON, extra,
        base=base, root=imagenet_root, model_extra=model_extra)
