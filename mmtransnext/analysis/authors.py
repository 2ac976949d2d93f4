"""The authors' release, built at run time from a checkout of github:DaiShiResearch/TransNeXt
(never copied here): their mmseg backbone with PyTorch-native attention, the one that takes
any input size and has both position-bias modes (is_extrapolation False / True = our
'interpolate' / 'extrapolate'; benchmarks/README.md gives the mapping). The mmseg 0.x /
mmcv 1.x names it imports get stand-ins in sys.modules while it executes, nothing else."""
import hashlib
import importlib.util
import logging
import subprocess
import sys
import types
from contextlib import contextmanager
from pathlib import Path

BACKBONE_FILE = 'segmentation/upernet/transnext_native.py'
PRETRAIN_SIZE = 224  # their configs' pretrain_size, our TransNeXt's default
IS_EXTRAPOLATION = {'interpolate': False, 'extrapolate': True}  # ours -> is_extrapolation


def maps_case(case):
    """Whether the authors' backbone has ``case``: forward or training step, interpolate
    or extrapolate (our 'linear' mode has no counterpart in it)."""
    return case.mode in ('forward', 'train') and case.pos_bias in IS_EXTRAPOLATION


def mapping(case, arch='tiny'):
    """How ``case`` is built on their side, in words."""
    from mmtransnext.models.backbones.arch_settings import ALIASES
    return (f'transnext_{ALIASES.get(arch, arch)}(img_size={case.img_size}, '
            f'pretrain_size={PRETRAIN_SIZE}, '
            f'is_extrapolation={IS_EXTRAPOLATION[case.pos_bias]}), input {case.res}')


class _Registry:
    def register_module(self, *args, **kwargs):
        return lambda cls: cls


def _load_checkpoint(*args, **kwargs):
    raise NotImplementedError('the benchmark builds the authors\' model without weights')


def _stand_ins():
    builder = types.ModuleType('mmseg.models.builder')
    builder.BACKBONES = _Registry()
    utils = types.ModuleType('mmseg.utils')
    utils.get_root_logger = lambda *a, **k: logging.getLogger('authors')
    runner = types.ModuleType('mmcv.runner')
    runner.load_checkpoint = _load_checkpoint
    return {m.__name__: m for m in (builder, utils, runner)}


@contextmanager
def _modules(replacements):
    saved = {name: sys.modules.get(name) for name in replacements}
    sys.modules.update(replacements)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def backbone_path(repo):
    path = Path(repo) / BACKBONE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f'--authors-repo {repo}: no {BACKBONE_FILE} (a checkout of '
            'github:DaiShiResearch/TransNeXt is expected)')
    return path


def load_module(repo):
    """Execute the authors' backbone file as module ``authors_transnext``."""
    path = backbone_path(repo)
    spec = importlib.util.spec_from_file_location('authors_transnext', path)
    module = importlib.util.module_from_spec(spec)
    with _modules(_stand_ins()):
        spec.loader.exec_module(module)
    return module


def build(repo, case, arch='tiny'):
    """Their ``transnext_<arch>`` for ``case``, drop path off (their classes fix a rate;
    ours is built with none)."""
    from mmtransnext.models.backbones.arch_settings import ALIASES
    cls = getattr(load_module(repo), f'transnext_{ALIASES.get(arch, arch)}')
    model = cls(pretrained=None, img_size=case.img_size, pretrain_size=PRETRAIN_SIZE,
                is_extrapolation=IS_EXTRAPOLATION[case.pos_bias])
    for m in model.modules():
        if hasattr(m, 'drop_prob'):
            m.drop_prob = 0.
    return model


def describe(repo, commit=None):
    """{commit, file, sha256} of the checkout; the commit from git where ``commit`` is not
    given and the checkout is a git work tree."""
    path = backbone_path(repo)
    if commit is None and (Path(repo) / '.git').exists():
        try:
            commit = subprocess.run(['git', '-C', str(repo), 'rev-parse', '--short=7', 'HEAD'],
                                    capture_output=True, text=True).stdout.strip() or None
        except OSError:
            commit = None
    return dict(path=str(Path(repo).resolve()), commit=commit or 'unknown', file=BACKBONE_FILE,
                sha256=hashlib.sha256(path.read_bytes()).hexdigest()[:12])
