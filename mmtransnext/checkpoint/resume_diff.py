"""``--resume`` names what changed: the config saved in the checkpoint (mmengine stores
``meta['cfg']``, the run's config as text) is compared with the current one, key by key;
each difference is logged, and those that the restored state overrides are named as such,
with the way to change them on purpose:

* ``optim_wrapper.optimizer.*`` (lr, weight_decay, betas, momentum, ...): the optimizer's
  state dict, param groups included, is restored, so the old values win;
* ``param_scheduler``: the schedulers' states (base values, last step) are restored;
* ``randomness.seed``: the checkpoint's seed is taken (resume.py).

The saved text is read with a literal-only parser (dicts, lists, tuples, numbers,
strings), never executed. Keys that differ by design between a run and its resumption
(``resume``, ``load_from``, ``work_dir``, ``launcher``, and what the launcher sets:
``model_wrapper_cfg``, ``env_cfg.dist_cfg``) are not compared.
"""
import ast
import logging
from typing import Dict, List, Optional, Tuple

from mmengine.logging import print_log

IGNORED = ('resume', 'load_from', 'work_dir', 'launcher', 'model_wrapper_cfg',
           'env_cfg.dist_cfg')
OVERRIDDEN = (('optim_wrapper.optimizer', 'the optimizer state restored from the '
               'checkpoint keeps the old value'),
              ('param_scheduler', 'the scheduler state restored from the checkpoint keeps '
               'the old schedule'),
              ('randomness.seed', 'the checkpoint\'s seed is used'))
HOW_TO_CHANGE = ('to train on with the new values, start a new run from the checkpoint\'s '
                 'weights instead: --cfg-options load_from=<checkpoint> without --resume, '
                 'in another --work-dir')
_UNPARSED = object()


def _literal(node):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id == 'dict' and not node.args:
        return {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg}
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    return ast.literal_eval(node)


def parse_saved_config(text: str) -> Optional[dict]:
    """The top-level assignments of a config's text (mmengine's ``pretty_text``) as a
    dict, read without executing anything; None when it is not such a text."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    config = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and \
                isinstance(statement.targets[0], ast.Name):
            try:
                config[statement.targets[0].id] = _literal(statement.value)
            except (ValueError, TypeError, SyntaxError):
                config[statement.targets[0].id] = _UNPARSED
    return config


def _flatten(value, prefix='') -> Dict[str, object]:
    if isinstance(value, dict):
        flat = {}
        for key, sub in value.items():
            flat.update(_flatten(sub, f'{prefix}.{key}' if prefix else str(key)))
        return flat or {prefix: {}}
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        flat = {}
        for i, sub in enumerate(value):
            flat.update(_flatten(sub, f'{prefix}.{i}'))
        return flat or {prefix: []}
    return {prefix: tuple(value) if isinstance(value, list) else value}


def _plain(cfg) -> dict:
    cfg = getattr(cfg, '_cfg_dict', cfg)
    return cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)


def _under(key: str, prefixes) -> bool:
    return any(key == p or key.startswith(p + '.') for p in prefixes)


def config_differences(saved: dict, current) -> List[Tuple[str, object, object]]:
    """(key, saved value, current value) for each dotted key that differs."""
    old = {k: v for k, v in _flatten(saved).items() if not _under(k, IGNORED)}
    new = {k: v for k, v in _flatten(_plain(current)).items() if not _under(k, IGNORED)}
    missing = '<not set>'
    return [(key, old.get(key, missing), new.get(key, missing))
            for key in sorted(set(old) | set(new))
            if old.get(key, missing) != new.get(key, missing)
            and old.get(key) is not _UNPARSED]


def overridden_by(key: str) -> Optional[str]:
    """Why the restored state overrides ``key``, or None."""
    return next((why for prefix, why in OVERRIDDEN if _under(key, [prefix])), None)


def report_config_changes(checkpoint_meta: dict, cfg, path: str) -> List[str]:
    """Log how ``cfg`` differs from the config saved in a checkpoint's meta; return the
    lines logged."""
    saved = parse_saved_config(checkpoint_meta.get('cfg') or '')
    if saved is None:
        return []
    lines = []
    overridden = []
    for key, old, new in config_differences(saved, cfg):
        why = overridden_by(key)
        lines.append(f'  {key}: {old!r} -> {new!r}' + (f'  [OVERRIDDEN: {why}]' if why else ''))
        if why:
            overridden.append(key)
    if not lines:
        return []
    head = f'--resume: the config differs from the one saved in {path}:'
    tail = (f'{len(overridden)} of these ({", ".join(overridden)}) are overridden by the '
            f'restored state; {HOW_TO_CHANGE}.' if overridden else
            'These settings take effect from the resumed iteration on.')
    print_log('\n'.join([head, *lines, tail]), logger='current', level=logging.WARNING)
    return lines
