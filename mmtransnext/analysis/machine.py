"""The machine a run is on: CPU, thread count, versions, our commit, GPU."""
import os
import platform
import subprocess
from pathlib import Path


def commit(cwd=Path(__file__).parent):
    """``git describe`` of the checkout holding ``cwd`` (with -dirty), or None."""
    try:
        return subprocess.run(['git', 'describe', '--always', '--dirty', '--abbrev=7'],
                              capture_output=True, text=True, cwd=cwd).stdout.strip() or None
    except OSError:
        return None


def cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            return next(line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine(device, threads):
    import torch
    info = dict(cpu=cpu_name(), logical_cpus=os.cpu_count(), threads=threads,
                torch=torch.__version__, python=platform.python_version(),
                platform=platform.platform())
    if device.startswith('cuda'):
        info['gpu'] = torch.cuda.get_device_name(torch.device(device))
        info['cuda'] = torch.version.cuda
    sha = commit()
    if sha:
        info['commit'] = sha
    return info
