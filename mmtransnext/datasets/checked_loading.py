"""Bad data names the file, where it is read.

mmcv's ``LoadImageFromFile`` reports a zero-byte image as ``cv2.error ... !buf.empty()``
without the file; a label id outside the classes crashes the loss iterations later
(``IndexError: Target 199 is out of bounds``), and a label map of another size than its
image is silently resized against it. tools/train.py and tools/test.py swap the loading
transforms of every dataloader pipeline for checked ones (:func:`use_checked_loading`;
:func:`use_checked_loading_in` does it in the dataloader settings a built runner holds,
so the config that mmengine dumps into the work dir and saves in every checkpoint keeps
the plain transforms, which inferencers look up by name):

* ``CheckedLoadImageFromFile`` (every task): a missing, empty or undecodable image is a
  :class:`BadDataError` naming the file and the problem;
* ``CheckedLoadSegAnnotations`` (segmentation, mmtransnext/datasets/seg_label_checks.py):
  a missing or undecodable label map, one whose size differs from its image, and label ids
  outside ``0 .. num_classes - 1`` other than the ignore index, each naming the file.

:func:`scan_dataset` (``tools/train.py --check-data``) runs the same checks over every
sample of the datasets before training and reports all problems at once.
The checks are switched off with ``--no-data-checks`` (the plain transforms stay).
"""
import os.path as osp
from typing import Iterable, List, Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.registry import TRANSFORMS

IMAGE_LOADERS = ('LoadImageFromFile', 'mmcv.LoadImageFromFile')
SEG_LABEL_LOADERS = ('LoadAnnotations', 'mmseg.LoadAnnotations')
DEFAULT_IGNORE_INDEX = 255


class BadDataError(ValueError):
    """A data file that cannot be used (the message names the file and the problem)."""


def describe_read_error(path: str, exc: BaseException) -> str:
    """Why the file at ``path`` could not be read, in words."""
    if '://' not in str(path):
        if not osp.exists(path):
            return 'the file does not exist'
        if osp.isdir(path):
            return 'it is a folder, not a file'
        if osp.getsize(path) == 0:
            return 'the file is empty (0 bytes)'
    detail = str(exc).strip().splitlines()[-1:] or ['']
    return f'it does not decode as an image ({type(exc).__name__}: {detail[0]})'


class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's LoadImageFromFile whose failures name the file: a missing, empty or
    undecodable image raises :class:`BadDataError` (``ignore_empty=True`` still skips it).

    Args:
        **kwargs: those of mmcv's ``LoadImageFromFile``.
    """

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        try:
            return super().transform(results)
        except Exception as exc:  # noqa: BLE001 (any failure: name the file)
            raise BadDataError(f'{path}: the image cannot be loaded: '
                               f'{describe_read_error(path, exc)}') from exc


def _pipelines(dataset_cfg) -> Iterable[list]:
    if not isinstance(dataset_cfg, dict):
        return
    if isinstance(dataset_cfg.get('pipeline'), list):
        yield dataset_cfg['pipeline']
    for key in ('dataset', 'datasets'):
        inner = dataset_cfg.get(key)
        for sub in inner if isinstance(inner, list) else [inner]:
            yield from _pipelines(sub)


def _swap(node, swaps: dict) -> None:
    """Replace, in place, the transform types of ``swaps`` anywhere inside ``node`` (also in
    TestTimeAug's nested lists)."""
    if isinstance(node, dict):
        new = swaps.get(node.get('type'))
        if new is not None:
            node.update(new)
        for value in node.values():
            _swap(value, swaps)
    elif isinstance(node, list):
        for item in node:
            _swap(item, swaps)


def seg_label_settings(cfg) -> dict:
    """The number of classes and the ignore index of the config's segmentation head."""
    model = cfg.get('model') or {}
    model = model.get('module', model)  # inside a TTA wrapper
    head = model.get('decode_head') or {}
    if isinstance(head, list):
        head = head[-1]
    settings = dict(ignore_index=head.get('ignore_index', DEFAULT_IGNORE_INDEX))
    if isinstance(head.get('num_classes'), int):
        settings['num_classes'] = head['num_classes']
    return settings


def use_checked_loading(cfg, task: str,
                        loaders=('train_dataloader', 'val_dataloader', 'test_dataloader')
                        ) -> None:
    """Swap the loading transforms of the pipelines of ``loaders`` for the checked ones
    (see the module docstring)."""
    swaps = {name: dict(type='CheckedLoadImageFromFile') for name in IMAGE_LOADERS}
    if task == 'seg':
        label = dict(type='CheckedLoadSegAnnotations', **seg_label_settings(cfg))
        swaps.update({name: label for name in SEG_LABEL_LOADERS})
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if isinstance(loader_cfg, dict):
            for pipeline in _pipelines(loader_cfg.get('dataset')):
                _swap(pipeline, swaps)


def use_checked_loading_in(runner, cfg, task: str, loaders) -> None:
    """:func:`use_checked_loading` on the (not yet built) dataloader settings of a runner
    made from ``cfg``; ``runner.cfg`` is left as it is."""
    held = {loader: getattr(runner, f'_{loader}', None) for loader in loaders}
    use_checked_loading(dict(model=cfg.get('model'), **held), task, loaders)


def _loading_steps(node, found=None) -> list:
    """The checked loading transforms inside ``node`` (a dataset config), one per type,
    in pipeline order (TestTimeAug's nested lists included)."""
    found = [] if found is None else found
    if isinstance(node, dict):
        if str(node.get('type')).startswith('CheckedLoad'):
            if all(step['type'] != node['type'] for step in found):
                found.append(node)
            return found
        for value in node.values():
            _loading_steps(value, found)
    elif isinstance(node, list):
        for item in node:
            _loading_steps(item, found)
    return found


def _leaf_datasets(dataset):
    if hasattr(dataset, 'datasets'):  # ConcatDataset
        for sub in dataset.datasets:
            yield from _leaf_datasets(sub)
    elif hasattr(dataset, 'dataset'):  # RepeatDataset, ClassBalancedDataset
        yield from _leaf_datasets(dataset.dataset)
    else:
        yield dataset


def scan_dataset(cfg, loaders: Iterable[str], limit: int = 50) -> List[str]:
    """Read every sample's files of the datasets of ``loaders`` through the checked
    loading transforms (after :func:`use_checked_loading`). Returns the problems found
    (at most ``limit`` per dataloader, then a count)."""
    from mmengine.dataset import Compose
    from mmengine.registry import DATASETS
    problems = []
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        dataset_cfg = loader_cfg.get('dataset') if isinstance(loader_cfg, dict) else None
        if not isinstance(dataset_cfg, dict):
            continue
        load = Compose([TRANSFORMS.build(step) for step in _loading_steps(dataset_cfg)])
        found = 0
        for dataset in _leaf_datasets(DATASETS.build(dataset_cfg)):
            for index in range(len(dataset)):
                try:
                    load(dict(dataset.get_data_info(index)))
                except BadDataError as exc:
                    found += 1
                    if found <= limit:
                        problems.append(f'{loader}: {exc}')
        if found > limit:
            problems.append(f'{loader}: ... and {found - limit} more')
    return problems
