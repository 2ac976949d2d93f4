"""The config's run-defining numbers checked before anything is built.

A non-positive learning rate, batch size or training length, from the config file or from
``--cfg-options``, otherwise fails in a library after the model and the data are built
(``batch_size=0``: torch's sampler; ``lr=-1``: the optimizer), or trains nothing. Checked
here, each is a :class:`ConfigValueError` naming the key, the value and how to set it:

* ``optim_wrapper.optimizer.lr`` (and the ``lr`` of each optimizer of an
  ``OptimWrapperDict``): a number > 0;
* ``batch_size`` of ``train_dataloader``, ``val_dataloader``, ``test_dataloader``: an
  int > 0;
* ``train_cfg.max_iters``, ``train_cfg.max_epochs``, ``train_cfg.val_interval``: an
  int > 0.
"""
from typing import Iterable, Iterator, Tuple

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
TRAIN_LENGTHS = ('max_iters', 'max_epochs', 'val_interval')


class ConfigValueError(ValueError):
    """A config value outside its valid range."""


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _learning_rates(cfg) -> Iterator[Tuple[str, object]]:
    wrapper = cfg.get('optim_wrapper')
    if not isinstance(wrapper, dict):
        return
    if isinstance(wrapper.get('optimizer'), dict):
        if 'lr' in wrapper['optimizer']:
            yield 'optim_wrapper.optimizer.lr', wrapper['optimizer']['lr']
        return
    for name, sub in wrapper.items():  # OptimWrapperDict: one wrapper per name
        optimizer = sub.get('optimizer') if isinstance(sub, dict) else None
        if isinstance(optimizer, dict) and 'lr' in optimizer:
            yield f'optim_wrapper.{name}.optimizer.lr', optimizer['lr']


def _positive_ints(cfg, loaders: Iterable[str]) -> Iterator[Tuple[str, object, str]]:
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if isinstance(loader_cfg, dict) and 'batch_size' in loader_cfg:
            yield f'{loader}.batch_size', loader_cfg['batch_size'], 'samples per batch'
    train_cfg = cfg.get('train_cfg')
    if 'train_dataloader' in loaders and isinstance(train_cfg, dict):
        for key in TRAIN_LENGTHS:
            if key in train_cfg:
                yield f'train_cfg.{key}', train_cfg[key], key.replace('_', ' ')


def _error(key, value, expected):
    return ConfigValueError(
        f'{key}={value!r}: {expected}; set it in the config or with --cfg-options '
        f'{key}=<value> (nothing was run)')


def check_config_values(cfg, loaders: Iterable[str] = LOADERS) -> None:
    """Raise :class:`ConfigValueError` for the first value of the module docstring's
    list that is out of range (the dataloaders of ``loaders`` only; the learning rate and
    ``train_cfg`` when ``train_dataloader`` is among them)."""
    loaders = tuple(loaders)
    if 'train_dataloader' in loaders:
        for key, lr in _learning_rates(cfg):
            if not is_number(lr) or not lr > 0:
                raise _error(key, lr, 'the learning rate must be a number > 0')
    for key, value, what in _positive_ints(cfg, loaders):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise _error(key, value, f'must be an integer > 0 ({what})')
