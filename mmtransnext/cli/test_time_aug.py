"""tools/test.py --aug-test for every task: the TTA pipeline built from the test pipeline
(multi-scale + flip) and the task's TTA model around the config's model."""
import copy

from mmengine.config import Config, ConfigDict

SEG_TTA_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
DET_TTA_RATIOS = (0.8, 1.0, 1.2)


def innermost_dataset(dataset_cfg):
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
    test_dataset = innermost_dataset(cfg.test_dataloader.dataset)
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
    if task == 'seg' and cfg.tta_model['type'] in ('SegTTAModel', 'mmseg.SegTTAModel'):
        cfg.tta_model['type'] = 'RunningSumSegTTAModel'  # same numbers, bounded memory
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    test_dataset.pipeline = cfg.tta_pipeline
