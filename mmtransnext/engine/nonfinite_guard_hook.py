"""A training step whose loss is NaN or Inf never reaches the weights.

:class:`NonFiniteGuardHook` checks the loss of every training step after the forward and
before the backward (it wraps the optimizer wrapper's ``update_params`` and records the
loss terms of the model's ``parse_losses``). A non-finite loss either stops the run with a
``FloatingPointError`` naming the iteration and the loss terms (``action='stop'``), or
drops the step, no backward and no optimizer step, up to ``max_skips`` times in a run
(``action='skip'``). Either way the weights stay those of the last finite step, so no
checkpoint is ever written from weights that a NaN step produced. Across processes the
decision is all-reduced: every rank stops or skips together. Gradients are checked where
it is free: with gradient-norm clipping (``optim_wrapper.clip_grad``), whose total norm is
computed anyway, a non-finite norm is handled the same way (skipping drops the gradients
before the optimizer step); the norm is the same on every rank. With loss scaling
(AmpOptimWrapper) the gradients' overflow stays the scaler's business: it skips such steps
itself. A finite loss with non-finite gradients and no clipping reaches the weights; then
the next loss is NaN and stops the run, and SafeCheckpointHook never writes such weights.

tools/train.py adds it by default (``--nonfinite-guard stop|skip|off``,
``--nonfinite-skips N``; or in the config ``nonfinite_guard = dict(action='skip',
max_skips=20)`` / ``nonfinite_guard = 'off'``). SafeCheckpointHook refuses, on its own,
to write weights that are not finite
(:func:`mmtransnext.checkpoint.state_dict.nonfinite_tensors`).
"""
import logging
from typing import Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

ACTIONS = ('stop', 'skip', 'off')
DEFAULT_MAX_SKIPS = 10


def _finite_everywhere(loss: torch.Tensor) -> bool:
    bad = (~torch.isfinite(loss.detach())).any().float().reshape(1)
    if get_world_size() > 1:
        all_reduce(bad)
    return bool(bad.item() == 0)


class NonFiniteGuardHook(Hook):
    """Stop the run at, or skip, a training step whose loss (or clipped gradient norm) is
    NaN or Inf, before the optimizer applies it (see the module docstring).

    Args:
        action (str): ``'stop'`` raises ``FloatingPointError`` naming the iteration and the
            loss terms; ``'skip'`` drops the step (no backward, no optimizer step) and
            continues; ``'off'`` checks nothing. Defaults to ``'stop'``.
        max_skips (int): with ``'skip'``, the number of dropped steps in a run after which
            the next non-finite loss stops it. Defaults to 10.
    """

    priority = 'VERY_HIGH'

    def __init__(self, action: str = 'stop', max_skips: int = DEFAULT_MAX_SKIPS):
        if action not in ACTIONS:
            raise ValueError(f'NonFiniteGuardHook: action must be one of {ACTIONS}, got '
                             f'{action!r}')
        if not isinstance(max_skips, int) or max_skips < 0:
            raise ValueError(f'NonFiniteGuardHook: max_skips must be an int >= 0, got '
                             f'{max_skips!r}')
        self.action = action
        self.max_skips = max_skips
        self.skipped = 0
        self._terms = None

    def before_train(self, runner) -> None:
        if self.action == 'off':
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if hasattr(model, 'parse_losses'):
            self._wrap_parse_losses(model)
        wrapper = runner.optim_wrapper
        wrappers = wrapper.values() if hasattr(wrapper, 'values') else [wrapper]
        for optim_wrapper in wrappers:
            self._wrap_update_params(runner, optim_wrapper)
            self._wrap_clip_grad_norm(runner, optim_wrapper)

    def _wrap_parse_losses(self, model) -> None:
        parse_losses = model.parse_losses

        def recorded(losses):
            loss, log_vars = parse_losses(losses)
            self._terms = log_vars
            return loss, log_vars

        model.parse_losses = recorded

    def _wrap_update_params(self, runner, optim_wrapper) -> None:
        update_params = optim_wrapper.update_params

        def guarded(loss, *args, **kwargs):
            terms, self._terms = self._terms, None
            if _finite_everywhere(loss):
                return update_params(loss, *args, **kwargs)
            self._non_finite(runner, 'loss', self._describe(loss, terms))
            optim_wrapper.zero_grad()

        optim_wrapper.update_params = guarded

    def _wrap_clip_grad_norm(self, runner, optim_wrapper) -> None:
        clip = getattr(optim_wrapper, 'clip_func', None)
        if clip is not torch.nn.utils.clip_grad_norm_ or hasattr(optim_wrapper, 'loss_scaler'):
            return

        def checked(params, *args, **kwargs):
            params = list(params)
            norm = clip(params, *args, **kwargs)
            if not bool(torch.isfinite(norm).all()):
                self._non_finite(runner, 'gradient norm', f'grad_norm={float(norm):.4g}')
                for param in params:  # skipped: the optimizer step leaves them as they are
                    param.grad = None
            return norm

        optim_wrapper.clip_func = checked

    def _describe(self, loss, terms: Optional[dict]) -> str:
        values = dict(terms) if terms else dict(loss=loss)
        shown = []
        for name, value in values.items():
            if torch.is_tensor(value) and value.numel() == 1:
                value = float(value.detach())
                shown.append(f'{name}={value:.4g}')
        return ', '.join(shown) or 'the loss is not a scalar'

    def _non_finite(self, runner, what: str, described: str) -> None:
        iteration = runner.iter + 1
        if self.action == 'skip' and self.skipped < self.max_skips:
            self.skipped += 1
            print_log(f'NonFiniteGuardHook: iteration {iteration}: non-finite {what} '
                      f'({described}); the step is skipped ({self.skipped} of at most '
                      f'{self.max_skips})', logger='current', level=logging.WARNING)
            return
        why = (f' after {self.skipped} skipped step(s) (max_skips={self.max_skips})'
               if self.action == 'skip' else '')
        raise FloatingPointError(
            f'iteration {iteration}: the {what} is not finite ({described}){why}. The run '
            'stops before this step reaches the weights, so every checkpoint written holds '
            'the finite weights of an earlier iteration. Lower the learning rate '
            '(optim_wrapper.optimizer.lr), clip gradients (optim_wrapper.clip_grad), or '
            'check the data; tools/train.py --nonfinite-guard skip drops such steps instead '
            '(up to --nonfinite-skips), --nonfinite-guard off switches the check off.')


def use_nonfinite_guard(cfg, action: Optional[str] = None,
                        max_skips: Optional[int] = None) -> None:
    """Add :class:`NonFiniteGuardHook` to ``cfg.custom_hooks`` (tools/train.py): with
    ``action`` / ``max_skips`` from the command line, else from the config's
    ``nonfinite_guard`` (a dict of the hook's arguments, or ``'off'``), else ``'stop'``.
    A NonFiniteGuardHook already in ``custom_hooks`` is kept as it is unless the command
    line says otherwise."""
    custom = list(cfg.get('custom_hooks') or [])
    present = [h for h in custom if h.get('type') == 'NonFiniteGuardHook']
    if present and action is None and max_skips is None:
        return
    setting = cfg.get('nonfinite_guard', None)
    if setting is None or setting is True:
        setting = {}
    elif setting is False or setting == 'off':
        setting = dict(action='off')
    elif isinstance(setting, str):
        setting = dict(action=setting)
    else:
        setting = dict(setting)
    if action is not None:
        setting['action'] = action
    if max_skips is not None:
        setting['max_skips'] = max_skips
    custom = [h for h in custom if h.get('type') != 'NonFiniteGuardHook']
    if setting.get('action', 'stop') != 'off':
        NonFiniteGuardHook(**setting)  # the arguments' errors before the run is built
        custom.append(dict(type='NonFiniteGuardHook', **setting))
    cfg.custom_hooks = custom
