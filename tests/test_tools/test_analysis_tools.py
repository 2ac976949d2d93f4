"""FLOPs, ERF and attention-map tools on random weights and generated images."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tools_testing import load_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'tests/data/cls_micro_config.py'


def _run(tool, *args):
    res = subprocess.run([sys.executable, str(ROOT / 'tools/analysis_tools' / tool), *map(str, args)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('images')
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(root / f'{i}.png')
    return root


def test_get_flops_cli_on_config():
    out = _run('get_flops.py', CONFIG, '--shape', 64, 64)
    assert 'GFLOPs' in out and 'whole model' in out


def test_visualize_erf_writes_a_heat_map_per_stage(image_dir, tmp_path):
    _run('visualize_erf.py', CONFIG, '--images', image_dir, '--size', 64,
         '--out-dir', tmp_path)
    for i in range(1, 5):
        with Image.open(tmp_path / f'erf_stage{i}.png') as img:
            assert img.size == (64, 64) and img.mode == 'RGB'
            assert np.asarray(img).std() > 0
    summary = json.loads((tmp_path / 'erf.json').read_text())
    assert summary['images'] == 3
    ratios = [summary['stages'][f'stage{i}'] for i in range(1, 5)]
    for r in ratios:  # more of the contribution needs more of the image
        assert 0 < r['20%'] < r['30%'] < r['50%'] < r['99%'] <= 1, r
    # deeper stages see further: the area holding 20 % of stage 4's ERF is several times
    # stage 1's (a degenerate gradient, e.g. of a constant, would put both on one pixel)
    assert ratios[3]['20%'] > 4 * ratios[0]['20%'], ratios


def test_erf_gradient_is_not_rounding_noise():
    """Each stage ends in a LayerNorm: the channel sum of its output is a constant at init,
    so the ERF must not be the gradient of that sum (it would be ~1e-6 of noise)."""
    accumulate_erf = load_tool('analysis_tools/visualize_erf').accumulate_erf
    from mmtransnext.models import TransNeXt

    torch.manual_seed(0)
    backbone = TransNeXt(arch='micro', img_size=64, pretrain_size=64).eval()
    erf = accumulate_erf(backbone, [torch.randn(1, 3, 64, 64) for _ in range(2)])
    assert erf.shape == (4, 64, 64)
    assert (erf.flatten(1).sum(1) > 1.0).all(), erf.flatten(1).sum(1)


def test_visualize_attention_writes_three_panels(image_dir, tmp_path):
    out = tmp_path / 'attn.png'
    stdout = _run('visualize_attention.py', CONFIG, '--image', image_dir / '0.png', '--size', 64,
                  '--stage', 1, '--block', 1, '--query', 10, 50, '--out', out)
    assert 'window path holds' in stdout
    with Image.open(out) as img:
        assert img.size == (3 * 64, 64)


def test_attention_maps_follow_the_query():
    query_maps = load_tool('analysis_tools/visualize_attention').query_maps
    h, n_local, n_pool = 2, 9, 4
    attn_local = torch.rand(h, 16 * 16, n_local)
    attn_pool = torch.rand(h, 16 * 16, n_pool)
    window, pooled = query_maps(attn_local, attn_pool, (16, 16), (2, 2), (0, 63), (64, 64))
    assert window.shape == (16, 16) and pooled.shape == (2, 2)
    nonzero = np.argwhere(window > 0)
    # top-right corner token (0, 15): only the 4 in-image window positions carry weight
    assert {tuple(p) for p in nonzero} == {(0, 14), (0, 15), (1, 14), (1, 15)}
