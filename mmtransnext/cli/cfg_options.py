"""``--cfg-options`` checked against the config before they are merged.

mmengine's ``Config.merge_from_dict`` adds any key it is given, so a typo
(``optim_wraper.optimizer.lr=0.5``) is silently ignored by the run. Here every dotted key
is walked through the config: a component that does not exist is an error when an existing
key at that level is close to it (a typo: the error names the closest key); a new key
with no close neighbour (``model.backbone.init_cfg=None`` where the config relies on the
constructor's default) is added with a warning. A list index out of range is an error.
"""
import difflib
import logging
from typing import Optional

from mmengine.logging import print_log

from .config_values import is_number

CLOSE_MATCH = 0.85  # difflib ratio above which a new key is taken for a typo


class UnknownCfgOptionError(KeyError):
    """A ``--cfg-options`` key that is not in the config and looks like a typo."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0])


def _missing_component(cfg, key: str):
    """(dotted path of the first missing component, the node it is missing from) or
    (None, None) when the whole key exists."""
    node = getattr(cfg, '_cfg_dict', cfg)  # an mmengine Config holds a ConfigDict
    parts = key.split('.')
    for i, part in enumerate(parts):
        here = '.'.join(parts[:i + 1])
        if isinstance(node, (list, tuple)):
            if not part.isdigit() or int(part) >= len(node):
                raise UnknownCfgOptionError(
                    f'--cfg-options {key}: {".".join(parts[:i]) or "the config"} is a list '
                    f'of {len(node)} items; {part!r} is not an index of it')
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return here, node
    return None, None


class CfgOptionTypeError(TypeError):
    """A ``--cfg-options`` value of another type than the key's existing value."""


def _existing_value(cfg, key: str):
    node = getattr(cfg, '_cfg_dict', cfg)
    for part in key.split('.'):
        node = node[int(part)] if isinstance(node, (list, tuple)) else node[part]
    return node


def _fits(old, new) -> bool:
    if new is None or old is None or isinstance(old, str):
        return True
    if isinstance(old, bool):
        return isinstance(new, bool)
    if is_number(old):
        return is_number(new)
    if isinstance(old, dict):
        return isinstance(new, dict)
    if isinstance(old, (list, tuple)):
        return isinstance(new, (list, tuple))
    return True


def check_cfg_option_type(cfg, key: str, value) -> None:
    """Raise :class:`CfgOptionTypeError` when ``value`` does not fit the existing value of
    ``key`` (see the module docstring)."""
    old = _existing_value(cfg, key)
    if not _fits(old, value):
        shown = repr(old) if len(repr(old)) <= 60 else f'a {type(old).__name__}'
        raise CfgOptionTypeError(
            f'--cfg-options {key}={value!r}: the config holds {shown} '
            f'({type(old).__name__}) there, and a {type(value).__name__} does not fit; '
            f'give a {type(old).__name__} value (nothing was run)')


def check_cfg_options(cfg, options: Optional[dict]) -> None:
    """Raise :class:`UnknownCfgOptionError` for a key that looks like a typo of an
    existing one and :class:`CfgOptionTypeError` for a value that does not fit the existing
    one; warn about keys the config does not have yet."""
    for key, value in (options or {}).items():
        path, node = _missing_component(cfg, key)
        if path is None:
            check_cfg_option_type(cfg, key, value)
            continue
        name = path.rsplit('.', 1)[-1]
        existing = [str(k) for k in node] if isinstance(node, dict) else []
        close = difflib.get_close_matches(name, existing, n=1, cutoff=CLOSE_MATCH)
        if close:
            parent = path[:-len(name)]
            suggestion = parent + close[0] + key[len(path):]
            raise UnknownCfgOptionError(
                f'--cfg-options {key}: the config has no key {path!r}; did you mean '
                f'{suggestion!r}? (nothing was run)')
        if not isinstance(node, dict):
            raise UnknownCfgOptionError(
                f'--cfg-options {key}: {path[:-len(name) - 1]!r} is a '
                f'{type(node).__name__}, not a dict, so it has no key {name!r}')
        print_log(f'--cfg-options {key}: {path!r} is not in the config; it is added',
                  logger='current', level=logging.WARNING)


def merge_cfg_options(cfg, options: Optional[dict]) -> None:
    """:func:`check_cfg_options`, then mmengine's merge."""
    if options:
        check_cfg_options(cfg, options)
        cfg.merge_from_dict(options)
