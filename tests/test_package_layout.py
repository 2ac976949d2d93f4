"""The package's floors: every module imports only from its own floor or lower ones, and no
two modules import each other (also through others). Read from the source (ast), so a
lazy import inside a function counts too."""
import ast
from pathlib import Path

import mmtransnext

PACKAGE = Path(mmtransnext.__file__).parent
# lowest first; a module may import from its own floor and from lower ones
FLOORS = {'version': 0, 'compat': 0, '_ext': 1, 'ops': 1, 'checkpoint': 2, 'datasets': 2,
          'models': 3, 'deploy': 4, 'engine': 4, 'registry': 5, 'cli': 6, 'analysis': 6,
          '__init__': 7}
COMPILED = {'_ext'}  # mmtransnext/_ext*.so: the compiled ops


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imports(path: Path):
    name = _module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith('mmtransnext'))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            if target == 'mmtransnext':  # from mmtransnext import _ext
                yield from (f'{target}.{a.name}' for a in node.names)
            elif target.startswith('mmtransnext'):
                yield target


def _floor(module: str) -> int:
    parts = module.split('.')
    return FLOORS[parts[1] if len(parts) > 1 else '__init__']


def _graph():
    return {_module_name(p): set(_imports(p)) for p in PACKAGE.rglob('*.py')}


def test_every_top_level_entry_has_a_floor():
    entries = {p.stem for p in PACKAGE.glob('*.py')} | {
        p.name for p in PACKAGE.iterdir() if (p / '__init__.py').is_file()}
    assert entries <= set(FLOORS) and set(FLOORS) - entries <= COMPILED


def test_no_import_runs_up_a_floor():
    upward = [f'{module} ({_floor(module)}) imports {target} ({_floor(target)})'
              for module, targets in _graph().items() for target in targets
              if _floor(target) > _floor(module)]
    assert not upward


def test_no_import_circle():
    graph = _graph()

    def resolve(target):  # 'mmtransnext.x.y' may name a module or a name inside one
        while target and target not in graph:
            target = target.rpartition('.')[0]
        return target

    edges = {m: {resolve(t) for t in ts} - {m, ''} for m, ts in graph.items()}
    # a package's __init__ importing its own modules is not a circle
    edges = {m: {t for t in ts if not t.startswith(m + '.')} for m, ts in edges.items()}
    state, circles = {}, []

    def visit(module, path):
        state[module] = 'open'
        for target in edges.get(module, ()):
            if state.get(target) == 'open':
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 'done'

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not circles
