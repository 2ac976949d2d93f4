"""What tools/train.py and tools/test.py share: one entry point for mmdet, mmseg and
mmpretrain configs.

* :func:`detect_task` tells detection, segmentation and classification apart by the
  config's ``default_scope`` (or, without one, by which package registers the model type);
* :func:`init_task_scope` makes that package the default scope (its registries then
  import their modules on demand);
* :func:`setup_distributed` lets ``--launcher pytorch`` run on CPU (gloo, no device ids);
* :func:`set_pos_bias`, :func:`apply_tta` and :func:`enable_visualization` implement
  test.py's ``--pos-bias``, ``--aug-test`` and ``--show-dir`` for every task.
"""
import copy
import logging
import os
from typing import Optional

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

TASKS = {'mmdet': 'det', 'mmseg': 'seg', 'mmpretrain': 'cls'}
SCOPES = {task: scope for scope, task in TASKS.items()}
SEG_TTA_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
DET_TTA_RATIOS = (0.8, 1.0, 1.2)


def _own_registry(scope):
    module = __import__(f'{scope}.registry', fromlist=['MODELS'])
    return module.MODELS


def detect_task(cfg: Config) -> str:
    """'det', 'seg' or 'cls' for a config of mmdet, mmseg or mmpretrain."""
    scope = cfg.get('default_scope')
    if scope in TASKS:
        return TASKS[scope]
    model_type = cfg.get('model', {}).get('type')
    if isinstance(model_type, str):
        if '.' in model_type and model_type.split('.')[0] in TASKS:
            return TASKS[model_type.split('.')[0]]
        for package, task in (('mmseg', 'seg'), ('mmpretrain', 'cls'), ('mmdet', 'det')):
            try:
                registry = _own_registry(package)
            except ImportError:
                continue
            registry.import_from_location()
            if model_type in registry.module_dict:
                return task
    raise ValueError(
        f'cannot tell the task of this config (default_scope={scope!r}, model type='
        f'{model_type!r}); set default_scope to one of {sorted(TASKS)}')


def init_task_scope(cfg: Config) -> str:
    """Set the config's default scope (filled in from the task when missing) and make it
    the current one. Returns the task."""
    from mmengine.registry import init_default_scope
    task = detect_task(cfg)
    cfg.default_scope = cfg.get('default_scope') or SCOPES[task]
    init_default_scope(cfg.default_scope)
    return task


def setup_distributed(cfg: Config, launcher: str) -> None:
    """On a machine without CUDA, ``--launcher pytorch`` uses gloo, starts the process
    group here (mmengine's init_dist would call torch.cuda.set_device) and wraps the model
    in DDP without device ids. With CUDA, mmengine's own set-up runs unchanged."""
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ValueError(f'--launcher {launcher} needs GPUs; on CPU use torchrun '
                         '(tools/dist_train.sh) with --launcher pytorch')
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(type='MMDistributedDataParallel')
    wrapper.setdefault('device_ids', None)
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')


def teardown_distributed() -> None:
    """Wait for every rank, then destroy the process group before the interpreter exits.
    A gloo group left alive at exit can abort one rank in C++ teardown
    ("terminate called without an active exception") after the run itself succeeded."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def set_pos_bias(model: torch.nn.Module, mode: str) -> int:
    """Switch every TransNeXt inside ``model`` (also inside a TTA or DDP wrapper) to the
    position-bias ``mode``. Returns how many were switched."""
    from mmtransnext.models import TransNeXt
    count = 0
    for module in model.modules():
        if isinstance(module, TransNeXt):
            module.pos_bias = mode
            count += 1
    if count == 0:
        raise ValueError('--pos-bias was given but the model contains no TransNeXt')
    print_log(f'position bias of {count} TransNeXt backbone(s) set to {mode!r}',
              logger='current', level=logging.INFO)
    return count


def _innermost_dataset(dataset_cfg):
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def _split_pipeline(pipeline, resize_types=('Resize', 'ResizeEdge', 'RandomResize')):
    """(before resize, resize or None, between resize and packing, packing)."""
    pipeline = [copy.deepcopy(t) for t in pipeline]
    pack = pipeline[-1]
    resize_at = next((i for i, t in enumerate(pipeline[:-1]) if t['type'] in resize_types),
                     None)
    if resize_at is None:
        return pipeline[:-1], None, [], pack
    return pipeline[:resize_at], pipeline[resize_at], pipeline[resize_at + 1:-1], pack


def seg_tta_pipeline(test_pipeline, ratios=SEG_TTA_RATIOS):
    """mmseg's ms+flip pipeline (as its ADE20K config): the image resized by each ratio,
    unflipped and flipped."""
    before, _, middle, pack = _split_pipeline(test_pipeline)
    transforms = [
        [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in ratios],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
    ]
    transforms += [[t] for t in middle] + [[pack]]
    return before + [dict(type='TestTimeAug', transforms=transforms)]


def det_tta_pipeline(test_pipeline, ratios=DET_TTA_RATIOS):
    """Multi-scale (ratios of the test Resize scale) x flip, packing flip metadata."""
    before, resize, middle, pack = _split_pipeline(test_pipeline)
    if resize is None or 'scale' not in resize:
        raise ValueError('--aug-test for detection needs a Resize with a scale in the test '
                         'pipeline, or tta_pipeline in the config')
    scale = resize['scale']
    scales = [tuple(int(round(s * r)) for s in scale) for r in ratios]
    pack = dict(pack)
    meta_keys = tuple(pack.get('meta_keys', ('img_id', 'img_path', 'ori_shape',
                                             'img_shape', 'scale_factor')))
    pack['meta_keys'] = meta_keys + tuple(k for k in ('flip', 'flip_direction')
                                          if k not in meta_keys)
    transforms = [
        [dict(resize, scale=s) for s in scales],
        [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
    ]
    transforms += [[t] for t in middle] + [[pack]]
    return before + [dict(type='TestTimeAug', transforms=transforms)]


def cls_tta_pipeline(test_pipeline):
    """Flip test for classification: each image unflipped and flipped."""
    before, resize, middle, pack = _split_pipeline(test_pipeline)
    before = before + ([resize] if resize is not None else []) + middle
    return before + [dict(type='TestTimeAug', transforms=[
        [dict(type='RandomFlip', prob=0.), dict(type='RandomFlip', prob=1.)], [pack]])]


def _has_mask_head(model_cfg) -> bool:
    roi_head = model_cfg.get('roi_head') or {}
    return bool(model_cfg.get('mask_head') or roi_head.get('mask_head'))


def apply_tta(cfg: Config, task: str) -> None:
    """Wrap ``cfg.model`` in the task's TTA model and give the test set the TTA pipeline.

    The config's own ``tta_model`` / ``tta_pipeline`` are used where present; otherwise
    seg: SegTTAModel over ratios 0.5..1.75 + flip (as RunningSumSegTTAModel: the views
    merged as a running sum, in bounded memory); det: DetTTAModel (or, with a mask
    head, mmtransnext's InstanceSegTTAModel) over 3 scales + flip; cls: flip averaging.
    """
    test_dataset = _innermost_dataset(cfg.test_dataloader.dataset)
    if 'tta_pipeline' not in cfg:
        pipeline = test_dataset.pipeline
        builders = dict(seg=seg_tta_pipeline, det=det_tta_pipeline, cls=cls_tta_pipeline)
        cfg.tta_pipeline = builders[task](pipeline)
    if 'tta_model' not in cfg:
        if task == 'seg':
            cfg.tta_model = dict(type='SegTTAModel')
        elif task == 'cls':
            cfg.tta_model = dict(type='AverageClsScoreTTA')
        else:
            nms = dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
            model = cfg.model
            cfg.tta_model = dict(
                type='InstanceSegTTAModel' if _has_mask_head(model) else 'DetTTAModel',
                tta_cfg=nms)
    if task == 'det' and cfg.tta_model['type'] == 'InstanceSegTTAModel':
        import mmtransnext.engine.det_tta  # noqa: F401  (registers it; needs mmdet)
    if task == 'seg' and cfg.tta_model['type'] in ('SegTTAModel', 'mmseg.SegTTAModel'):
        import mmtransnext.engine.seg_tta  # noqa: F401  (registers it; needs mmseg)
        cfg.tta_model['type'] = 'RunningSumSegTTAModel'  # same numbers, bounded memory
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    test_dataset.pipeline = cfg.tta_pipeline


def enable_visualization(cfg: Config, task: str, show_dir: str) -> None:
    """Draw every test prediction into ``show_dir``; a relative ``show_dir`` lies inside
    the work dir, for every task (an absolute path also keeps mmdet's hook from nesting
    folders when the work dir is relative)."""
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise RuntimeError('--show-dir needs default_hooks.visualization in the config')
    hook = hooks['visualization']
    out = os.path.abspath(os.path.join(cfg.work_dir, show_dir))  # join keeps absolute ones
    if task == 'det':
        hook['draw'] = True
        hook['test_out_dir'] = out
        return
    hook['interval'] = 1
    if task == 'cls':
        hook['enable'] = True
        hook['out_dir'] = out
    else:
        hook['draw'] = True
        cfg.visualizer['save_dir'] = out


def work_dir_from(cfg: Config, config_path: str, work_dir: Optional[str]) -> str:
    """--work-dir, else the config's work_dir, else ./work_dirs/<config name>."""
    if work_dir is not None:
        return work_dir
    if cfg.get('work_dir'):
        return cfg.work_dir
    return os.path.join('./work_dirs', os.path.splitext(os.path.basename(config_path))[0])


def read_test_metrics(work_dir: str) -> dict:
    """The metrics of the latest test run in ``work_dir`` (mmengine's json log)."""
    import glob
    import json
    logs = sorted(glob.glob(os.path.join(work_dir, '*', '*.json')))
    if not logs:
        raise FileNotFoundError(f'no json log of a test run in {work_dir}')
    with open(logs[-1]) as f:
        last = f.readlines()[-1]
    # raw_decode: the first whole object. In a distributed test every rank dumps the same
    # metrics to this file (mmengine's LoggerHook opens it with 'w' on all ranks), so a
    # shorter write can land over a longer one and leave its tail behind: '{...}66}'.
    return json.JSONDecoder().raw_decode(last)[0]
