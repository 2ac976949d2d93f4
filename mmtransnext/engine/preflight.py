"""What tools/train.py and tools/test.py check before anything is built: the checkpoint
to load is a checkpoint file (mmtransnext/utils/safe_load.py), and the image folders of
the configured datasets hold images.

A dataset folder with the right structure but no images makes mmengine fail deep inside
the dataset's set-up (``need at least one array to concatenate``). Here the image folder
of each dataset a run will read (``data_root`` joined with ``data_prefix``'s image entry,
or mmpretrain's ``split``) is searched for one image file; an existing folder without
any is an error naming the folder and what was expected there. Missing folders are left
to the dataset classes (their errors name the path).
"""
import os
import os.path as osp
from typing import Iterable, Iterator

from mmtransnext.utils.safe_load import check_checkpoint_file

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm',
                    '.pgm')
IMAGE_PREFIX_KEYS = ('img_path', 'img')  # mmseg, mmdet


class EmptyDatasetError(FileNotFoundError):
    """A dataset's image folder holds no image file."""


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
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in files):
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
