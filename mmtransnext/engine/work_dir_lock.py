"""A work dir belongs to one training run.

* :func:`lock_work_dir`: a training run holds ``fcntl.flock`` on ``<work_dir>/.train.lock``
  from before it reads or writes anything in the work dir until the process ends. A second
  run on the same work dir gets :class:`WorkDirBusyError` naming the run that holds it
  (host, pid, start time), before it writes anything. The kernel drops the lock when the
  process ends in any way (a crash, kill -9), so it is never left stuck; the file itself
  stays and means nothing. Within one process the lock is taken once per work dir. On a
  file system without flock (some NFS set-ups), a warning says that the work dir is not
  protected. Only the first process of a job (rank 0) takes it.
* :func:`check_work_dir_owner`: a new run (no ``--resume``) in a work dir that holds
  checkpoints of another run is refused: it would overwrite them one by one, and a later
  ``--resume`` would continue from the other run's newest file. ``--overwrite`` moves
  them (with ``last_checkpoint``) into ``<work_dir>/replaced_<timestamp>/`` first and says
  so; nothing is deleted.
"""
import datetime
import errno
import logging
import os
import os.path as osp
import socket
import time
from typing import Dict, List

from mmengine.logging import print_log

from mmtransnext.checkpoint.resume import scan_checkpoints

LOCK_NAME = '.train.lock'
RANK_VARIABLES = ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK')
_HELD: Dict[str, int] = {}  # work dir -> file descriptor holding its lock


class WorkDirBusyError(RuntimeError):
    """Another training run holds the work dir."""


class WorkDirTakenError(RuntimeError):
    """The work dir holds another run's checkpoints."""


def launch_rank() -> int:
    """The process's rank as the launcher set it (0 without one)."""
    for name in RANK_VARIABLES:
        if os.environ.get(name, '').isdigit():
            return int(os.environ[name])
    return 0


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode(errors='replace').strip()
    except OSError:
        text = ''
    return text or 'another process'


def lock_work_dir(work_dir: str) -> bool:
    """Take the training lock of ``work_dir`` (rank 0 only; see the module docstring).
    Returns whether this process holds it now. Raises :class:`WorkDirBusyError` when
    another run holds it."""
    import fcntl
    work_dir = osp.abspath(work_dir)
    if work_dir in _HELD:
        return True
    if launch_rank() != 0:
        return False
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            holder = _holder(fd)
            os.close(fd)
            raise WorkDirBusyError(
                f'{work_dir} is in use by another training run ({holder}); two runs in one '
                'work dir overwrite each other\'s checkpoints. Wait for it to end, or give '
                'this run another --work-dir. Nothing was written.') from None
        os.close(fd)
        print_log(f'cannot lock {path} ({exc}); the work dir is not protected against a '
                  'second run', logger='current', level=logging.WARNING)
        return False
    started = datetime.datetime.now().isoformat(timespec='seconds')
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'host {socket.gethostname()}, pid {os.getpid()}, started {started}\n'
              .encode(), 0)
    _HELD[work_dir] = fd
    return True


def release_work_dir(work_dir: str) -> None:
    """Drop this process's lock of ``work_dir`` (the end of the process does it too)."""
    fd = _HELD.pop(osp.abspath(work_dir), None)
    if fd is not None:
        os.close(fd)


def other_run_files(work_dir: str, template: str) -> List[str]:
    """The checkpoints (by ``template``) and ``last_checkpoint`` in ``work_dir``."""
    found = sorted(scan_checkpoints(work_dir, template))
    record = osp.join(work_dir, 'last_checkpoint')
    return found + ([record] if osp.isfile(record) else [])


def check_work_dir_owner(work_dir: str, template: str, overwrite: bool = False) -> None:
    """A new run (not resuming) in ``work_dir``: refuse when it holds checkpoints, or with
    ``overwrite`` move them aside (see the module docstring)."""
    files = other_run_files(work_dir, template)
    if not files:
        return
    names = ', '.join(osp.basename(f) for f in files)
    if not overwrite:
        raise WorkDirTakenError(
            f'{work_dir} holds checkpoints of an earlier run ({names}); a new run there '
            'would overwrite them, and a later --resume would continue from the wrong one. '
            'Continue that run with --resume, start over with --overwrite (the files are '
            'moved into <work_dir>/replaced_<time>/), or use another --work-dir. Nothing '
            'was written.')
    if launch_rank() != 0:
        return
    aside = osp.join(work_dir, time.strftime('replaced_%Y%m%d_%H%M%S'))
    base, n = aside, 1
    while osp.exists(aside):
        aside, n = f'{base}_{n}', n + 1
    os.makedirs(aside)
    for path in files:
        os.replace(path, osp.join(aside, osp.basename(path)))
    print_log(f'--overwrite: moved {names} of the earlier run into {aside}', logger='current',
              level=logging.WARNING)
