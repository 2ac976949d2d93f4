"""The tools' ``--launcher`` and ``--local-rank`` options, and ``--launcher pytorch`` on
CPU: tools/dist_train.sh and dist_test.sh with gloo."""
import argparse
import os

import torch
from mmengine.config import Config, ConfigDict

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def add_launcher_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank (torchrun sets LOCAL_RANK)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def export_local_rank(args: argparse.Namespace) -> None:
    """LOCAL_RANK from ``--local-rank`` where the launcher did not set it."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)


def setup_distributed(cfg: Config, launcher: str) -> None:
    """On a machine without CUDA, ``--launcher pytorch`` uses gloo, starts the process
    group here (mmengine's init_dist would call torch.cuda.set_device) and wraps the model
    in DDP without device ids. With CUDA, mmengine's own set-up runs unchanged."""
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ValueError(f'--launcher {launcher} needs GPUs; on CPU use torchrun '
                         '(tools/dist_train.sh) with --launcher pytorch')
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(type='MMDistributedDataParallel')
    wrapper.setdefault('device_ids', None)
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')


def teardown_distributed() -> None:
    """Wait for every rank, then destroy the process group before the interpreter exits.
    A gloo group left alive at exit can abort one rank in C++ teardown
    ("terminate called without an active exception") after the run itself succeeded."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
