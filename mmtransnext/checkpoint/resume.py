"""Which checkpoint ``tools/train.py --resume`` continues from, so that resuming never
loses work.

* Without a path, the newest *complete* checkpoint of the work dir: the files named by the
  checkpoint hook's template (``iter_{}.pth`` / ``epoch_{}.pth``) and the one
  ``last_checkpoint`` names (relative to the work dir, or absolute; an absolute path that
  no longer exists is looked up in the work dir, which may have been moved). A missing or
  empty ``last_checkpoint`` is no obstacle.
* A checkpoint is complete when its archive is whole (every CRC checks) and it holds
  mmengine's ``meta`` with epoch and iteration. Incomplete newer ones are renamed to
  ``<name>.corrupt`` with a warning (kept, and never overwritten by the resumed run).
* Resuming from a checkpoint older than another one in the work dir is refused: the run
  would overwrite the later one.
* The run takes the checkpoint's random seed before the data sampler is built (mmengine
  only applies it after), so data order and augmentation match the original run.
"""
import logging
import math
import os
import os.path as osp
import re
import zipfile
from typing import Dict, Optional, Tuple

from mmengine.config import ConfigDict
from mmengine.logging import print_log

from mmtransnext.checkpoint.safe_load import torch_load_allowed

from .atomic_write import remove_stale_temporaries


def _warn(msg):
    print_log(msg, logger='current', level=logging.WARNING)


def checkpoint_template(cfg) -> Tuple[str, bool]:
    """(filename template, by_epoch) of the config's checkpoint hook."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    by_epoch = hook.get('by_epoch', True)
    return hook.get('filename_tmpl') or ('epoch_{}.pth' if by_epoch else 'iter_{}.pth'), \
        by_epoch


def _step_pattern(template: str):
    head, _, tail = template.partition('{}')
    return re.compile(re.escape(head) + r'(\d+)' + re.escape(tail))


def scan_checkpoints(folder: str, template: str) -> Dict[str, int]:
    """{path: step} of the files in ``folder`` named by ``template``."""
    pattern = _step_pattern(template)
    if not osp.isdir(folder):
        return {}
    return {osp.normpath(osp.join(folder, name)): int(match[1]) for name in os.listdir(folder)
            if (match := pattern.fullmatch(name))}


def read_last_checkpoint(work_dir: str) -> Optional[str]:
    """The path ``<work_dir>/last_checkpoint`` names, resolved; None when there is no
    usable one (each case logged)."""
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None
    with open(record) as f:
        text = f.read().strip()
    if not text:
        _warn(f'{record} is empty; looking for the newest checkpoint in {work_dir}')
        return None
    path = osp.normpath(text if osp.isabs(text) else osp.join(work_dir, text))
    if osp.exists(path):
        return path
    moved = osp.join(work_dir, osp.basename(text))
    if osp.exists(moved):
        print_log(f'{record} names {text}, which does not exist (the work dir was moved?); '
                  f'using {moved}', logger='current')
        return moved
    _warn(f'{record} names {text}, which does not exist; looking for the newest '
          f'checkpoint in {work_dir}')
    return None


def inspect_checkpoint(path: str) -> Tuple[Optional[str], Optional[dict]]:
    """(None, meta) for a complete training checkpoint, else (what is wrong, None)."""
    if not osp.isfile(path):
        return 'the file does not exist', None
    if osp.getsize(path) == 0:
        return 'the file is empty', None
    try:
        if not zipfile.is_zipfile(path):
            return 'it is not a complete checkpoint archive (cut short?)', None
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        if bad is not None:
            return f'the data of {bad} is damaged (CRC mismatch)', None
        checkpoint = torch_load_allowed(path, map_location='cpu', mmap=True)
    except Exception as exc:  # noqa: BLE001 (any failure to read means: not usable)
        return f'it cannot be read ({type(exc).__name__}: {exc})', None
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict) or not {'epoch', 'iter'} <= set(meta):
        return 'it holds no training state (no meta with epoch and iter)', None
    return None, meta


def _is_rank0() -> bool:
    return int(os.environ.get('RANK', '0')) == 0


def _set_aside(path: str) -> str:
    target, n = f'{path}.corrupt', 1
    while osp.exists(target):
        target, n = f'{path}.corrupt{n}', n + 1
    os.replace(path, target)
    return target


def find_resume_checkpoint(work_dir: str, template: str = 'iter_{}.pth') -> Optional[str]:
    """The newest complete checkpoint in ``work_dir`` (see the module docstring); None
    when the work dir holds no checkpoint at all. Raises when it holds only unusable
    ones."""
    return _newest_complete(work_dir, template)[0]


def _newest_complete(work_dir: str, template: str) -> Tuple[Optional[str], Optional[dict]]:
    if _is_rank0():
        remove_stale_temporaries(work_dir)
    found = scan_checkpoints(work_dir, template)
    last = read_last_checkpoint(work_dir)
    if last is not None and last not in found:
        match = _step_pattern(template).fullmatch(osp.basename(last))
        found[last] = int(match[1]) if match else math.inf  # tried first, as mmengine would
    skipped = []
    for path in sorted(found, key=found.get, reverse=True):
        problem, meta = inspect_checkpoint(path)
        if problem is None:
            if skipped:
                moved = [_set_aside(p) if _is_rank0() and osp.isfile(p) else p
                         for p, _ in skipped]
                _warn('--resume: skipped the newer checkpoint(s) '
                      + '; '.join(f'{p} ({why}; kept as {m})'
                                  for (p, why), m in zip(skipped, moved))
                      + f'; resuming from {path}, the newest complete one')
            return path, meta
        skipped.append((path, problem))
    if skipped:
        raise RuntimeError(
            f'--resume: {work_dir} holds no complete checkpoint: '
            + '; '.join(f'{p}: {why}' for p, why in skipped)
            + '. No checkpoint was changed. Resume from another file with --resume <path>, or '
            'train from the beginning without --resume (in another --work-dir to keep '
            'these files).')
    return None, None


def resolve_resume(cfg) -> Optional[dict]:
    """``--resume``: set ``cfg.load_from`` to the checkpoint to continue from (or switch
    resuming off when the work dir holds none), refuse a resume that would overwrite a
    later checkpoint, and take the checkpoint's random seed. Returns the checkpoint's
    ``meta`` (None when not resuming or unreadable)."""
    if not cfg.get('resume'):
        return None
    template, by_epoch = checkpoint_template(cfg)
    path = cfg.get('load_from')
    if path:
        _, meta = inspect_checkpoint(path)
    else:
        path, meta = _newest_complete(cfg.work_dir, template)
        if path is None:
            _warn(f'--resume: no checkpoint in {cfg.work_dir}; training starts from the '
                  'beginning')
            cfg.resume = False
            return None
        print_log(f'--resume: continuing from {path}', logger='current')
        cfg.load_from = path
    if meta is None:  # tools/train.py reports what is wrong with it when it loads it
        return None
    step = meta['epoch' if by_epoch else 'iter']
    later = sorted(p for p, s in scan_checkpoints(cfg.work_dir, template).items()
                   if s > step and osp.abspath(p) != osp.abspath(path))
    if later:
        unit = 'epoch' if by_epoch else 'iteration'
        raise RuntimeError(
            f'--resume {path} continues from {unit} {step}, but the work dir already holds '
            f'{", ".join(map(osp.basename, later))} of a later {unit}, which this run would '
            'overwrite. Resume from the newest with --resume (no path), or move those '
            'files out of the work dir, or use another --work-dir.')
    seed = meta.get('seed')
    randomness = cfg.get('randomness') or ConfigDict()
    if seed is not None and randomness.get('seed') != seed:
        if randomness.get('seed') is not None:
            _warn(f'--resume: the checkpoint was trained with seed {seed}, the config says '
                  f'{randomness["seed"]}; continuing with {seed}')
        randomness['seed'] = seed
        cfg.randomness = randomness
    return meta
