"""Checkpoints that tools/test.py, ``load_from`` and ``--resume`` load into the whole model
must cover it: mmengine loads non-strictly and only logs missing or mis-shaped keys, so a
wrong checkpoint would otherwise be evaluated as a mostly random model.

:class:`StrictLoadHook` runs when the Runner has read a checkpoint and before the weights
are copied into the model (``after_load_checkpoint``):

* the authors' unconverted ImageNet checkpoints (official keys, ``head.*``) are converted
  on the fly to the model's layout (mmpretrain classifier: ``backbone.*`` + ``head.fc.*``;
  detector / segmentor: ``backbone.*``, the classifier head dropped), and this is logged;
* any model weight left uncovered or mis-shaped, or an unexpected key, is an error that
  lists the keys and names the fix; with ``allow_partial`` (the tools' ``--partial-load``)
  the matching weights are loaded and the log lists what stays randomly initialised;
* a resume needs a training checkpoint (meta epoch / iter and optimizer state); a file
  with weights only is refused with the ``load_from`` alternative.
"""
import logging
from collections import OrderedDict

from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmtransnext.checkpoint.conversion import imagenet_to_mmpretrain, is_imagenet_layout
from mmtransnext.checkpoint.state_dict import (CONVERT_HINT, check_state_dict, state_dict_problems,
                                               summarise_keys, unwrap_state_dict)

PARTIAL_HINT = ('or pass --partial-load to load only the matching weights (the rest stays '
                'randomly initialised)')
RESUME_KEYS = ('meta', 'optimizer')


def bare_model(model):
    """The model inside DDP / TTA wrappers (what mmengine loads the weights into)."""
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def adapt_layout(state_dict, model_keys):
    """The authors' ImageNet layout converted to the model's layout; else unchanged.
    Returns (state dict, description of the conversion or None)."""
    if not is_imagenet_layout(state_dict) or 'backbone.patch_embed1.proj.weight' not in \
            model_keys:
        return state_dict, None
    if 'head.fc.weight' in model_keys:
        return imagenet_to_mmpretrain(state_dict), 'backbone.* and head.fc.* (mmpretrain)'
    dropped = [k for k in state_dict if k.startswith('head.')]
    converted = {f'backbone.{k}': v for k, v in state_dict.items() if not k.startswith('head.')}
    return converted, f'backbone.* (classifier head {", ".join(dropped) or "-"} dropped)'


def check_resume_checkpoint(checkpoint, filename=None):
    """A resume needs what tools/train.py saves during training, not weights only."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if (isinstance(meta, dict) and 'epoch' in meta and 'iter' in meta
            and 'optimizer' in checkpoint):
        return
    name = filename or 'the checkpoint'
    keys = sorted(checkpoint)[:6] if isinstance(checkpoint, dict) else []
    raise ValueError(
        f'--resume needs a checkpoint written during training (meta with epoch and iter, '
        f'optimizer state); {name} holds weights only (top-level keys: {keys}). To start '
        f'a new training from its weights, drop --resume and pass --cfg-options '
        f'load_from={filename or "<file>"}')


class StrictLoadHook(Hook):
    """Checks a checkpoint against the whole model before its weights are copied in: the
    authors' ImageNet layout converted on the fly; uncovered, mis-shaped or unexpected keys
    an error naming them and the fix; a resume from a weights-only file refused (see the
    module docstring). tools/train.py and tools/test.py add it (:func:`use_strict_load`).

    Args:
        allow_partial (bool): Load only the matching weights and log which stay randomly
            initialised, instead of refusing the checkpoint (the tools' ``--partial-load``).
            Defaults to False.
    """

    priority = 'VERY_HIGH'  # before hooks that read the weights (EMAHook)

    def __init__(self, allow_partial: bool = False):
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        source = f'checkpoint {runner._load_from}' if runner._load_from else 'the checkpoint'
        if runner._resume:
            check_resume_checkpoint(checkpoint, runner._load_from)
        model = bare_model(runner.model)
        own = model.state_dict()
        state_dict, converted = adapt_layout(unwrap_state_dict(checkpoint), own)
        if converted:
            print_log(f'{source} is in the authors\' ImageNet layout; converted on the fly '
                      f'to {converted}', logger='current', level=logging.WARNING)
        if not self.allow_partial:
            check_state_dict(model, state_dict, source, what='model weights',
                             fix=f'{CONVERT_HINT} (and num_classes), {PARTIAL_HINT}')
        missing, unexpected, mismatched, problems = state_dict_problems(own, state_dict)
        if not (problems or converted or 'state_dict' not in checkpoint):
            return  # mmengine loads checkpoint['state_dict'] as it is
        if problems:
            state_dict = {k: v for k, v in state_dict.items()
                          if k in own and k not in mismatched}
            random = sorted(missing | set(mismatched))
            print_log(f'--partial-load: loaded {len(state_dict)} of {len(own)} weights from '
                      f'{source}; {len(random)} stay randomly initialised: '
                      f'{summarise_keys(random) or "none"}; {len(unexpected)} checkpoint keys '
                      f'ignored', logger='current', level=logging.WARNING)
        _replace_state_dict(checkpoint, state_dict)


def _replace_state_dict(checkpoint, state_dict):
    """Make ``checkpoint['state_dict']`` (what mmengine loads) ``state_dict``, in place,
    keeping the version metadata of the original."""
    metadata = getattr(checkpoint.get('state_dict', checkpoint), '_metadata', None)
    if metadata is not None:
        state_dict = OrderedDict(state_dict)
        state_dict._metadata = metadata
    if 'state_dict' not in checkpoint and not any(isinstance(checkpoint.get(k), dict)
                                                  for k in ('model', 'module')):
        checkpoint.clear()  # a plain tensor dict
    checkpoint['state_dict'] = state_dict


def add_partial_load_argument(parser) -> None:
    parser.add_argument(
        '--partial-load', action='store_true',
        help='load a checkpoint that does not cover the whole model: the matching weights '
        'load, the log lists those that stay randomly initialised (default: an error)')


def use_strict_load(cfg, allow_partial: bool = False) -> None:
    """Add :class:`StrictLoadHook` to the config's custom hooks."""
    hooks = list(cfg.get('custom_hooks') or [])
    hooks.append(dict(type='StrictLoadHook', allow_partial=allow_partial))
    cfg.custom_hooks = hooks
