"""The tools' runner gets a run folder of its own, whatever runner type the config names."""
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmtransnext  # noqa: F401  registers UniqueRunDirRunner
from mmtransnext.cli.safe_training import use_unique_run_dir
from mmtransnext.engine.unique_run_dir import UniqueRunDirMixin, UniqueRunDirRunner


class PlainCustomRunner(Runner):
    pass


class OwnRunDirRunner(UniqueRunDirMixin, Runner):
    pass


def _runner_type(**cfg):
    cfg = Config(cfg)
    use_unique_run_dir(cfg)
    return cfg.get('runner_type')


def test_every_runner_type_gets_the_mixin_once():
    RUNNERS.register_module(module=PlainCustomRunner, force=True)
    RUNNERS.register_module(name='OwnRunDir', module=OwnRunDirRunner, force=True)
    assert _runner_type() == 'UniqueRunDirRunner'
    assert RUNNERS.get('UniqueRunDirRunner') is UniqueRunDirRunner
    name = _runner_type(runner_type='PlainCustomRunner')
    assert name == 'UniqueRunDirPlainCustomRunner'
    built = RUNNERS.get(name)
    assert issubclass(built, UniqueRunDirMixin) and issubclass(built, PlainCustomRunner)
    assert RUNNERS.get(_runner_type(runner_type='PlainCustomRunner')) is built  # one class
    # a runner that has the mixin already keeps its type (and its registered name)
    assert _runner_type(runner_type='OwnRunDir') == 'OwnRunDir'
    assert _runner_type(runner_type='NoSuchRunner') == 'NoSuchRunner'
