"""Where a run writes (``--work-dir``) and what a test run left there."""
import glob
import json
import os
from typing import Optional

from mmengine.config import Config


def work_dir_from(cfg: Config, config_path: str, work_dir: Optional[str]) -> str:
    """--work-dir, else the config's work_dir, else ./work_dirs/<config name>."""
    if work_dir is not None:
        return work_dir
    if cfg.get('work_dir'):
        return cfg.work_dir
    return os.path.join('./work_dirs', os.path.splitext(os.path.basename(config_path))[0])


def read_test_metrics(work_dir: str) -> dict:
    """The metrics of the latest test run in ``work_dir`` (mmengine's json log)."""
    logs = sorted(glob.glob(os.path.join(work_dir, '*', '*.json')))
    if not logs:
        raise FileNotFoundError(f'no json log of a test run in {work_dir}')
    with open(logs[-1]) as f:
        last = f.readlines()[-1]
    # raw_decode: the first whole object. In a distributed test every rank dumps the same
    # metrics to this file (mmengine's LoggerHook opens it with 'w' on all ranks), so a
    # shorter write can land over a longer one and leave its tail behind: '{...}66}'.
    return json.JSONDecoder().raw_decode(last)[0]
