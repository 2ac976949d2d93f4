"""The training loop's parts that configs and tools/train.py put in: the optimizer-wrapper
constructor of TransNeXt's recipes, bf16 autocast on any device, the progress-bar hook, the
non-finite loss guard, the checkpoint on preemption, a run folder and a work dir of one's
own. (Hooks about checkpoints live in mmtransnext/checkpoint/.)
"""
from .bf16_optim_wrapper import BF16OptimWrapper
from .nonfinite_guard_hook import NonFiniteGuardHook
from .optim_constructor import TransNeXtOptimWrapperConstructor
from .preemption_hook import PreemptionHook
from .progress_bar_hook import ProgressBarHook
from .unique_run_dir import UniqueRunDirRunner

__all__ = ['BF16OptimWrapper', 'NonFiniteGuardHook', 'PreemptionHook', 'ProgressBarHook',
           'TransNeXtOptimWrapperConstructor', 'UniqueRunDirRunner']
