"""The benchmark's cases (MODE:RES:POS_BIAS[:IMG_SIZE]), their defaults, and which
implementations and precisions run side by side in each."""
import argparse
from typing import NamedTuple

from .implementations import CPU_DEFAULT, CUDA_DEFAULT

MODES = ('forward', 'train', 'ops-forward', 'ops-train')
# issue 18's cases: what the authors' release is set against
CPU_CASES = ('forward:512:interpolate', 'forward:512:extrapolate',
             'forward:1024:interpolate:512', 'train:512:interpolate', 'ops-forward:512:-',
             'ops-train:512:-')
# issue 16's GPU cases (the training step with batch 2: --batch applies to forward cases)
CUDA_CASES = ('forward:512:interpolate', 'forward:1024:interpolate:512',
              'forward:1024:extrapolate', 'train:512:interpolate')
CUDA_TRAIN_BATCH = 2
PRECISIONS = ('fp32', 'bf16-autocast', 'fp16-autocast')
CPU_PRECISIONS = ('fp32', 'bf16-autocast')
CUDA_PRECISIONS = ('fp32', 'fp16-autocast')
OPS_IMPLS = ('ext', 'torch', 'unfold')
REFERENCES = ('swin', 'convnext')


class Case(NamedTuple):
    mode: str
    res: int
    pos_bias: str
    img_size: int


def parse_case(text):
    parts = text.split(':')
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError(
            f'a case is MODE:RES:POS_BIAS[:IMG_SIZE], e.g. forward:1024:interpolate:512; '
            f'got {text!r}')
    mode, res, pos_bias = parts[:3]
    if mode not in MODES:
        raise argparse.ArgumentTypeError(f'mode must be one of {MODES}, got {mode!r}')
    return Case(mode, int(res), pos_bias, int(parts[3]) if len(parts) == 4 else int(res))


def default_cases(cuda):
    return [parse_case(c) for c in (CUDA_CASES if cuda else CPU_CASES)]


def windowed_stages(arch, res):
    """(stage, heads, head_dim, tokens per side, window, blocks) of the stages with a window."""
    from mmtransnext.models.backbones.arch_settings import resolve_arch, stage_stride
    a = resolve_arch(arch)
    return [(i, a['num_heads'][i], a['embed_dims'][i] // a['num_heads'][i],
             res // stage_stride(i), a['window_size'][i], a['depths'][i])
            for i in range(len(a['depths'])) if a['window_size'][i] is not None]


def takes_references(case):
    """Swin-T and ConvNeXt-T have no position-bias mode: they join the plain single-scale
    forward cases only (interpolate at the model's own size)."""
    return case.mode == 'forward' and case.pos_bias == 'interpolate' \
        and case.res == case.img_size


def variants(case, impls=None, precisions=CPU_PRECISIONS, authors=False, references=(),
             cuda=False):
    """[(implementation, precision)] timed side by side in ``case``: ours in each precision,
    then the authors' release (fp32) where it has the case's position-bias mode, then the
    reference backbones (fp32)."""
    if case.mode.startswith('ops'):
        return [(i, 'fp32') for i in impls or OPS_IMPLS]
    ours = [(i, p) for i in impls or (CUDA_DEFAULT if cuda else CPU_DEFAULT)
            for p in precisions]
    if authors:
        from .authors import maps_case
        if maps_case(case):
            ours.append(('authors', 'fp32'))
    if takes_references(case):
        ours += [(r, 'fp32') for r in references]
    return ours
