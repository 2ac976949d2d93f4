"""One run folder per run: two runs started in the same second on one work dir never
share ``<work_dir>/<timestamp>/`` (mmengine names it after the second the run started,
so the second run's log, metrics json and config dump went into the first run's folder,
and one metrics file was lost).

The folder is reserved with an exclusive ``mkdir``: the timestamp when that is free, else
``<timestamp>_1``, ``<timestamp>_2``, ... (they sort after the plain timestamp, so the
latest run still sorts last). Rank 0 reserves it; the other ranks receive the name.
"""
import os
import os.path as osp

from mmengine.dist import broadcast_object_list, get_dist_info
from mmengine.runner import Runner


def reserve_run_dir(work_dir: str, timestamp: str) -> str:
    """Create ``<work_dir>/<name>`` for a new run and return ``name``: ``timestamp``, or
    ``timestamp`` with the first free ``_<n>`` suffix."""
    os.makedirs(work_dir, exist_ok=True)
    name, n = timestamp, 0
    while True:
        try:
            os.mkdir(osp.join(work_dir, name))
            return name
        except FileExistsError:
            n += 1
            name = f'{timestamp}_{n}'


class UniqueRunDirMixin:
    """For a Runner class: its timestamp (which names the run folder, the log, the json
    log and the config dump) is made unique within the work dir."""

    def setup_env(self, env_cfg):
        super().setup_env(env_cfg)
        name = [reserve_run_dir(self._work_dir, self._timestamp)
                if get_dist_info()[0] == 0 else None]
        broadcast_object_list(name)
        self._timestamp = name[0]


class UniqueRunDirRunner(UniqueRunDirMixin, Runner):
    """mmengine's Runner with a run folder of its own (see the module docstring)."""


def with_unique_run_dir(base: type) -> type:
    """``base`` (a Runner class without it) with :class:`UniqueRunDirMixin`; the same class
    for the same base."""
    if base not in _WITH_MIXIN:
        name = f'UniqueRunDir{base.__name__}'
        _WITH_MIXIN[base] = type(name, (UniqueRunDirMixin, base), {})
    return _WITH_MIXIN[base]


_WITH_MIXIN = {Runner: UniqueRunDirRunner}
