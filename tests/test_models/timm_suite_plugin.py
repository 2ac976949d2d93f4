"""pytest plugin of the sub-run of timm's own tests/test_models.py (see test_timm_suite.py).

The fetched file is not edited. When pytest collects it, its source is parsed and the
module-level selection lists named in ``EXTEND`` are extended right after their
definition, the way timm adds its own models to them; the module then runs from that tree
(with pytest's assertion rewriting).
"""
import ast
import sys
import types

import pytest
from _pytest.assertion.rewrite import rewrite_asserts

import mmtransnext  # noqa: F401  registers the transnext_* models
from mmtransnext.models.classifiers import timm_transnext

# timm's module name of the models: the last part of their entry points' __module__
TIMM_MODULE = timm_transnext.__name__.rsplit('.', 1)[-1]
MODELS = 'transnext_*'

EXTEND = {
    # models with forward_intermediates() / prune_intermediate_layers() (FeatureGetterNet)
    'FEAT_INTER_FILTERS': [TIMM_MODULE],
    # not scriptable: the attentions keep position-bias grids and window geometry in Python
    # caches (dicts, lru_cache), which TorchScript cannot compile
    'EXCLUDE_JIT_FILTERS': [MODELS],
}


def extend_selection_lists(tree: ast.Module, path) -> ast.Module:
    body, found = [], set()
    for node in tree.body:
        body.append(node)
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id in EXTEND):
            name = node.targets[0].id
            extension = ast.parse(f'{name} += {EXTEND[name]!r}').body[0]
            body.append(ast.copy_location(extension, node))
            found.add(name)
    missing = sorted(EXTEND.keys() - found)
    if missing:
        raise RuntimeError(f'{path} defines no module-level {missing}: timm changed its test '
                           'file; update EXTEND in tests/test_models/timm_suite_plugin.py')
    tree.body = body
    return ast.fix_missing_locations(tree)


class ExtendedTimmModule(pytest.Module):
    def _getobj(self):
        source = self.path.read_bytes()
        tree = extend_selection_lists(ast.parse(source, str(self.path)), self.path)
        rewrite_asserts(tree, source, str(self.path), self.config)
        name = 'timm_test_models'
        module = types.ModuleType(name)
        module.__file__ = str(self.path)
        sys.modules[name] = module
        exec(compile(tree, str(self.path), 'exec', dont_inherit=True), module.__dict__)
        return module


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path, parent):
    if module_path.name == 'test_models.py':
        return ExtendedTimmModule.from_parent(parent, path=module_path)
    return None


def pytest_configure(config):
    if not config.pluginmanager.hasplugin('timeout'):  # pytest-timeout is not a dependency
        config.addinivalue_line('markers', 'timeout(seconds): pytest-timeout limit')
