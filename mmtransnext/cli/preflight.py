"""What tools/train.py and tools/test.py check before anything is built: the checkpoint
to load is a checkpoint file (mmtransnext/checkpoint/safe_load.py), and the image folders of
the configured datasets hold images.

A dataset folder with the right structure but no images makes mmengine fail deep inside
the dataset's set-up (``need at least one array to concatenate``). Here the image folder
of each dataset a run will read (``data_root`` joined with ``data_prefix``'s image entry,
or mmpretrain's ``split``) is searched for one image file; an existing folder without
any is an error naming the folder and what was expected there. Missing folders are left
to the dataset classes (their errors name the path).

An output path (test.py ``--out``, the work dir) is checked to be writable before the run:
the nearest existing folder on its way must be a folder and writable, so that a path under
a file or in a read-only place is an error naming it, not a failure after the whole test.
"""
import os
import os.path as osp
from typing import Iterable, Iterator

from mmtransnext.checkpoint.safe_load import check_checkpoint_file
from mmtransnext.datasets.image_files import IMAGE_EXTENSIONS, is_image_file

IMAGE_PREFIX_KEYS = ('img_path', 'img')  # mmseg, mmdet


class EmptyDatasetError(FileNotFoundError):
    """A dataset's image folder holds no image file."""


class UnwritablePathError(OSError):
    """An output path that cannot be written."""

    def __str__(self):
        return str(self.args[0])


def check_writable(path: str, option: str, folder: bool = False) -> None:
    """Raise :class:`UnwritablePathError` when ``path`` (a file, or with ``folder`` a
    folder, created with its missing parents) cannot be written; ``option`` names it."""
    target = osp.abspath(path)
    if osp.isdir(target) != folder and osp.exists(target):
        what = 'a folder' if osp.isdir(target) else 'a file'
        raise UnwritablePathError(f'{option} {path}: {target} is {what}; give '
                                  f'{"a folder" if folder else "a file path"} (nothing was run)')
    probe = target if folder else osp.dirname(target)
    while not osp.exists(probe):
        probe = osp.dirname(probe)
    if not osp.isdir(probe):
        raise UnwritablePathError(f'{option} {path}: {probe} is a file, so nothing can be '
                                  'written under it; give another path (nothing was run)')
    if osp.isfile(target):  # an existing file is written over
        probe, mode = target, os.W_OK
    else:  # a new entry in the folder
        mode = os.W_OK | os.X_OK
    if not os.access(probe, mode):
        raise UnwritablePathError(f'{option} {path}: {probe} is not writable by this user; '
                                  'give a writable path (nothing was run)')


def _datasets(dataset_cfg) -> Iterator[dict]:
    """The leaf dataset configs under wrappers (RepeatDataset, ConcatDataset, ...)."""
    if not isinstance(dataset_cfg, dict):
        return
    if 'dataset' in dataset_cfg:
        yield from _datasets(dataset_cfg['dataset'])
    elif 'datasets' in dataset_cfg:
        for sub in dataset_cfg['datasets']:
            yield from _datasets(sub)
    else:
        yield dataset_cfg


def image_folder(dataset_cfg):
    """The local folder the dataset reads its images from, or None if unknown."""
    backend = (dataset_cfg.get('backend_args') or {}).get('backend', 'local')
    if backend != 'local':
        return None
    prefix = dataset_cfg.get('data_prefix')
    if isinstance(prefix, dict):
        rel = next((prefix[k] for k in IMAGE_PREFIX_KEYS if prefix.get(k)), '')
    else:
        rel = prefix or dataset_cfg.get('split') or ''
    root = dataset_cfg.get('data_root') or ''
    if not (root or rel) or '://' in f'{root}{rel}':
        return None
    return osp.join(root, rel)


def has_image(folder: str) -> bool:
    """Whether ``folder`` (searched recursively, stopping at the first hit) holds an
    image file."""
    for _, _, files in os.walk(folder, followlinks=True):
        if any(is_image_file(f) for f in files):
            return True
    return False


def check_dataset_folders(cfg, loaders: Iterable[str]) -> None:
    """Raise :class:`EmptyDatasetError` for a dataset of ``cfg``'s ``loaders`` (e.g.
    'train_dataloader') whose existing image folder holds no image."""
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if not isinstance(loader_cfg, dict):
            continue
        for dataset in _datasets(loader_cfg.get('dataset')):
            folder = image_folder(dataset)
            if folder and osp.isdir(folder) and not has_image(folder):
                raise EmptyDatasetError(
                    f'{loader}: the {dataset.get("type", "dataset")} image folder {folder} '
                    f'(data_root + data_prefix) holds no image file; expected the images '
                    f'there ({", ".join(IMAGE_EXTENSIONS[:3])}, ...), e.g. as written by '
                    'tools/misc/generate_toy_data.py or the dataset\'s own layout')


def check_run_inputs(cfg, loaders: Iterable[str]) -> None:
    """The checkpoint in ``cfg.load_from`` (a local one) and the datasets of ``loaders``."""
    load_from = cfg.get('load_from')
    if load_from and '://' not in str(load_from):
        check_checkpoint_file(load_from)
    check_dataset_folders(cfg, loaders)
