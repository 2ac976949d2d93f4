"""Loading TransNeXt weights so that a mismatch can never pass silently.

Accepted layouts: the authors' ImageNet checkpoints (official keys + ``head.*``),
their downstream checkpoints (``state_dict`` with ``backbone.`` prefixes), mmpretrain
classifiers converted by tools/model_converters/transnext2mm.py, and plain state dicts.
"""
import logging
from typing import Dict, List, Optional

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

CONVERT_HINT = ('convert the authors\' checkpoint with tools/model_converters/transnext2mm.py '
                'and check that the arch matches the checkpoint')
_WRAPPERS = ('state_dict', 'model', 'module')
_SHOWN = 10


class CheckpointMismatchError(KeyError):
    """A checkpoint does not cover exactly the backbone's weights."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0])


def unwrap_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """The tensor dict inside a checkpoint, without 'module.' prefixes."""
    sd = checkpoint
    for key in _WRAPPERS:
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    return {(k[7:] if k.startswith('module.') else k): v for k, v in sd.items()}


def backbone_state_dict(checkpoint, prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Backbone weights of any accepted layout, without the classifier head."""
    sd = unwrap_state_dict(checkpoint)
    if prefix is None and any(k.startswith('backbone.') for k in sd):
        prefix = 'backbone'
    if prefix:
        prefix = prefix.rstrip('.') + '.'
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if not sd:
            raise CheckpointMismatchError(f'no key of the checkpoint starts with {prefix!r}')
    return {k: v for k, v in sd.items() if not k.startswith('head.')}


def summarise_keys(keys):
    keys = sorted(keys)
    more = f' ... (+{len(keys) - _SHOWN} more)' if len(keys) > _SHOWN else ''
    return ', '.join(keys[:_SHOWN]) + more


def state_dict_problems(own, state_dict, what='backbone weights'):
    """(missing, unexpected, mismatched, messages) of ``state_dict`` against the model's
    own state dict ``own``; BatchNorm's num_batches_tracked may be missing."""
    missing = {k for k in own.keys() - state_dict.keys() if 'num_batches_tracked' not in k}
    unexpected = state_dict.keys() - own.keys()
    mismatched = [k for k in own.keys() & state_dict.keys()
                  if own[k].shape != state_dict[k].shape]
    problems = []
    if missing:
        problems.append(f'{len(missing)} {what} missing (they would stay randomly '
                        f'initialised): {summarise_keys(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected keys: {summarise_keys(unexpected)}')
    if mismatched:
        shapes = [f'{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}'
                  for k in mismatched]
        problems.append(f'{len(mismatched)} shape mismatches (checkpoint vs model): '
                        f'{summarise_keys(shapes)}')
    return missing, unexpected, mismatched, problems


def check_state_dict(model: torch.nn.Module, state_dict, source: str = 'checkpoint',
                     what: str = 'backbone weights', fix: str = CONVERT_HINT):
    """Raise CheckpointMismatchError naming missing, unexpected and mis-shaped keys."""
    problems = state_dict_problems(model.state_dict(), state_dict, what)[-1]
    if problems:
        raise CheckpointMismatchError(
            f'{source} does not match {type(model).__name__}: ' + '; '.join(problems)
            + f'. Fix: {fix}.')


def load_backbone_checkpoint(model, filename, prefix=None, map_location='cpu'):
    """Load ``filename`` into ``model`` strictly (torch.load stays weights_only)."""
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    state_dict = backbone_state_dict(checkpoint, prefix)
    check_state_dict(model, state_dict, source=f'checkpoint {filename}')
    model.load_state_dict(state_dict, strict=True)
    print_log(f'{type(model).__name__}: loaded all {len(state_dict)} weights from {filename}',
              logger='current', level=logging.INFO)


def nonfinite_tensors(module: torch.nn.Module) -> List[str]:
    """Names of the floating-point parameters and buffers of ``module`` holding NaN or Inf
    (one device synchronisation when all are finite)."""
    named = [(name, t) for name, t in module.state_dict(keep_vars=True).items()
             if torch.is_tensor(t) and t.is_floating_point() and t.numel()]
    if not named:
        return []
    flags = torch.stack([torch.isfinite(t.detach()).all().cpu() for _, t in named])
    if bool(flags.all()):
        return []
    return [name for (name, _), ok in zip(named, flags.tolist()) if not ok]
