"""TransNeXt variants (../shared/docs/TRANSNEXT.md, "Macro structure")."""
import copy

ARCH_KEYS = ('embed_dims', 'num_heads', 'depths', 'mlp_ratios', 'sr_ratios', 'window_size')
_COMMON = dict(mlp_ratios=[8, 8, 4, 4], sr_ratios=[8, 4, 2, 1], window_size=[3, 3, 3, None])

ARCH_ZOO = {
    'micro': dict(embed_dims=[48, 96, 192, 384], num_heads=[2, 4, 8, 16],
                  depths=[2, 2, 15, 2], **_COMMON),
    'tiny': dict(embed_dims=[72, 144, 288, 576], num_heads=[3, 6, 12, 24],
                 depths=[2, 2, 15, 2], **_COMMON),
    'small': dict(embed_dims=[72, 144, 288, 576], num_heads=[3, 6, 12, 24],
                  depths=[5, 5, 22, 5], **_COMMON),
    'base': dict(embed_dims=[96, 192, 384, 768], num_heads=[4, 8, 16, 32],
                 depths=[5, 5, 23, 5], **_COMMON),
    # Aggregated attention in all four stages; trained at 256 x 256.
    'micro-aaaa': dict(embed_dims=[48, 96, 192, 384], num_heads=[2, 4, 8, 16],
                       depths=[2, 2, 15, 2], mlp_ratios=[8, 8, 4, 4],
                       sr_ratios=[16, 8, 4, 2], window_size=[3, 3, 3, 3]),
}
STEM_STRIDE = 4  # the first patch embedding; every later one halves the token grid


def patch_stride(index: int) -> int:
    """Stride of stage ``index``'s patch embedding (0-based): 4, then 2."""
    return STEM_STRIDE if index == 0 else 2


def stage_stride(index: int) -> int:
    """Pixels per token at stage ``index`` (0-based): 4, 8, 16, 32, ..."""
    return STEM_STRIDE * 2 ** index


ALIASES = {'m': 'micro', 't': 'tiny', 's': 'small', 'b': 'base', 'micro_aaaa': 'micro-aaaa'}


def resolve_arch(arch):
    """Arch name or dict -> validated dict of per-stage lists."""
    if isinstance(arch, str):
        name = ALIASES.get(arch.lower(), arch.lower())
        if name not in ARCH_ZOO:
            raise ValueError(f'unknown TransNeXt arch {arch!r}; choose one of '
                             f'{sorted(ARCH_ZOO)} or pass a dict with keys {ARCH_KEYS}')
        return copy.deepcopy(ARCH_ZOO[name])
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}')
    missing = [k for k in ARCH_KEYS if k not in arch and k != 'window_size']
    if missing:
        raise ValueError(f'arch dict lacks {missing}; it needs {ARCH_KEYS}')
    arch = copy.deepcopy(dict(arch))
    num_stages = len(arch['depths'])
    window = arch.get('window_size', 3)
    if not isinstance(window, (list, tuple)):  # one size for every pooled stage
        window = [None if s == 1 else window for s in arch['sr_ratios']]
    arch['window_size'] = list(window)
    for key in ARCH_KEYS:
        if len(arch[key]) != num_stages:
            raise ValueError(f'arch[{key!r}] has {len(arch[key])} entries for '
                             f'{num_stages} stages')
    for i, (sr, win) in enumerate(zip(arch['sr_ratios'], arch['window_size'])):
        if (win is None) != (sr == 1):
            raise ValueError(
                f'stage {i}: window_size {win} with sr_ratio {sr}; a stage with sr_ratio 1 '
                'uses full attention (window_size None), one with sr_ratio > 1 needs an odd '
                'window_size')
    return {k: arch[k] for k in ARCH_KEYS}


def infer_arch(state_dict) -> str:
    """Name of the TransNeXt variant whose backbone keys/shapes ``state_dict`` holds
    (official layout, no prefix)."""
    dims, depths, sr_ratios = [], [], []
    for i in range(1, 5):
        proj = state_dict.get(f'patch_embed{i}.proj.weight')
        if proj is None:
            break
        dims.append(proj.shape[0])
        blocks = {int(k.split('.')[1]) for k in state_dict if k.startswith(f'block{i}.')}
        depths.append(max(blocks) + 1 if blocks else 0)
        pooled = f'block{i}.0.attn.sr.weight' in state_dict
        sr_ratios.append(pooled)
    for name, arch in ARCH_ZOO.items():
        if (arch['embed_dims'] == dims and arch['depths'] == depths
                and [s > 1 for s in arch['sr_ratios']] == sr_ratios):
            return name
    raise ValueError(f'no TransNeXt arch has embed_dims {dims}, depths {depths} and pooled '
                     f'attention in stages {sr_ratios}; known: {sorted(ARCH_ZOO)}')
