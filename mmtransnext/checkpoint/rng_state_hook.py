"""Exact resume: the random-number streams continue after ``--resume`` as if the run had
never stopped.

At every checkpoint, :class:`~mmtransnext.checkpoint.checkpoint_hook.SafeCheckpointHook`
stores each rank's python, numpy, torch (and CUDA) RNG states in the MessageHub (so in the
checkpoint). :class:`RNGStateHook` puts them back when the run resumes, at the point
where the uninterrupted run drew its next number:

* iteration-based loops: after mmengine has advanced the dataloader past the batches
  already trained (that replay runs the pipeline and so draws numbers of its own; it also
  brings the sampler and the dataloader workers' streams to the same position);
* epoch-based loops: at the start of the first epoch after the checkpoint.

Validation during training saves and restores the states around itself, so it never
shifts the training streams (a resumed run does not repeat the validation).
"""
import logging
import random

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmtransnext.compat import loop_skips_trained_batches

RNG_INFO_KEY = 'rng_state'


def capture_rng_state() -> dict:
    """This process's RNG states, as tensors, ints and tuples (torch.load
    weights_only=True reads them back without extra allow-listing)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = dict(
        python=random.getstate(),
        numpy=dict(name=name, keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                   has_gauss=int(has_gauss), gauss=float(gauss)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))
    np_state = state['numpy']
    np.random.set_state((np_state['name'], np_state['keys'].numpy().astype(np.uint32),
                         np_state['pos'], np_state['has_gauss'], np_state['gauss']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def gather_rng_states() -> list:
    """Every rank's :func:`capture_rng_state`, in rank order (call it on all ranks)."""
    state = capture_rng_state()
    _, world_size = get_dist_info()
    return all_gather_object(state) if world_size > 1 else [state]


def training_rng_states(runner) -> list:
    """Every rank's RNG states as training left them: during a validation inside
    training (where mmengine's save_best saves checkpoints), as they were before it.
    Call it on all ranks."""
    for hook in runner.hooks:
        if isinstance(hook, RNGStateHook) and hook.val_snapshot is not None:
            return hook.val_snapshot
    return gather_rng_states()


class _RestoreAfterSkip:
    """Stands in for an IterBasedTrainLoop's dataloader iterator until the loop has
    skipped the batches already trained (or skips them itself, where mmengine's loop does
    not: before 0.10.3), then restores the RNG states and steps aside."""

    def __init__(self, loop, state):
        self._loop, self._iterator, self._state = loop, loop.dataloader_iterator, state
        self._skip = loop.iter

    def __iter__(self):
        return self

    def __next__(self):
        if not loop_skips_trained_batches():  # mmengine < 0.10.3 does not: skip them here
            while self._skip > 0:
                self._skip -= 1
                next(self._iterator)
        if self._skip > 0:
            self._skip -= 1
            return next(self._iterator)
        restore_rng_state(self._state)
        self._loop.dataloader_iterator = self._iterator
        return next(self._iterator)


class RNGStateHook(Hook):
    """Restores the checkpoint's RNG states on resume; keeps validation from shifting
    the training streams. tools/train.py adds it."""

    priority = 'VERY_HIGH'

    def __init__(self):
        self._resumed = None
        self.val_snapshot = None  # every rank's states while a validation runs

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):  # load_from: weights only, fresh run
            return
        states = checkpoint.get('message_hub', {}).get('runtime_info', {}).get(RNG_INFO_KEY)
        if not states:
            print_log('the checkpoint holds no RNG states (written without mmtransnext\'s '
                      'SafeCheckpointHook): random augmentation, dropout and drop path after '
                      'resuming will differ from an uninterrupted run',
                      logger='current', level=logging.WARNING)
            return
        rank, world_size = get_dist_info()
        if len(states) != world_size:
            print_log(f'the checkpoint holds the RNG states of {len(states)} process(es), '
                      f'this run has {world_size}: every rank continues from rank 0\'s '
                      'state (not exact)', logger='current', level=logging.WARNING)
            rank = 0
        self._resumed = states[rank]

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if self._resumed is not None and hasattr(loop, 'dataloader_iterator'):
            loop.dataloader_iterator = _RestoreAfterSkip(loop, self._resumed)
            self._resumed = None

    def before_train_epoch(self, runner) -> None:
        if self._resumed is not None:
            loader = runner.train_dataloader
            if getattr(loader, 'persistent_workers', False) and loader.num_workers > 0:
                print_log('resuming an epoch-based run whose dataloader keeps its workers '
                          '(persistent_workers=True): the workers\' random streams restart, '
                          'so random augmentation differs from an uninterrupted run; set '
                          'persistent_workers=False for an exact resume', logger='current',
                          level=logging.WARNING)
            restore_rng_state(self._resumed)
            self._resumed = None

    def before_val(self, runner) -> None:
        self.val_snapshot = gather_rng_states()

    def after_val(self, runner) -> None:
        if self.val_snapshot is not None:
            restore_rng_state(self.val_snapshot[get_dist_info()[0]])
            self.val_snapshot = None
