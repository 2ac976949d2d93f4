"""Atomic file writes for checkpoints: a crash, a kill -9 or a full disk never leaves a
partial file under the final name and never replaces a good file with a partial one.

The bytes go to a hidden temporary file in the same folder (``.<name>.<host>.<pid>.tmp``),
are flushed to the disk (fsync), and the temporary is then renamed over the final name
(atomic on POSIX file systems); the folder is fsynced so that the rename survives a power
loss. On any error the temporary is removed and the error re-raised. A process killed
mid-write leaves only its temporary behind: :func:`remove_stale_temporaries` deletes
those of dead processes of this host.

:class:`AtomicLocalBackend` is mmengine's local file backend with ``put`` made atomic:
``backend_args=dict(backend='atomic_local')`` selects it (SafeCheckpointHook does).
"""
import errno
import os
import os.path as osp
import re
import socket
from typing import List, Union

from mmengine.fileio.backends import LocalBackend

CHUNK = 64 << 20
_TEMP = re.compile(r'^\.(?P<name>.+)\.(?P<host>[^.]+)\.(?P<pid>\d+)\.tmp$')


def _host() -> str:
    return socket.gethostname().split('.')[0] or 'host'


def temporary_path(path: str) -> str:
    folder, name = osp.split(path)
    return osp.join(folder, f'.{name}.{_host()}.{os.getpid()}.tmp')


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view[:CHUNK])
        view = view[written:]


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(data: bytes, path: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either its old content or all of
    ``data``, never a part of it."""
    path = os.fspath(path)
    folder = osp.dirname(path) or '.'
    os.makedirs(folder, exist_ok=True)
    tmp = temporary_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(exc.errno, f'no space left on the device while writing {path} '
                          f'({len(data) / 2**20:.1f} MiB): that file was not changed and the '
                          'existing checkpoints are intact; free space (or set '
                          'max_keep_ckpts) and resume with --resume') from exc
        raise
    _fsync_dir(folder)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str) -> List[str]:
    """Delete the temporaries left in ``folder`` by killed processes of this host.
    Returns the removed paths."""
    removed = []
    if not osp.isdir(folder):
        return removed
    for name in os.listdir(folder):
        match = _TEMP.match(name)
        if match and match['host'] == _host() and not _pid_alive(int(match['pid'])):
            try:
                os.unlink(osp.join(folder, name))
                removed.append(osp.join(folder, name))
            except OSError:
                pass
    return removed


class AtomicLocalBackend(LocalBackend):
    """mmengine's LocalBackend whose ``put`` / ``put_text`` write atomically."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)
