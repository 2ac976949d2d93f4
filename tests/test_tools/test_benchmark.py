"""tools/analysis_tools/benchmark.py end to end on tiny cases: the columns of issue 9
(memory as parameters + buffers + peak working set, the matmul floor) and issue 18's side by
side run with an authors' checkout (a fake one, made in tmp_path), bf16 beside fp32."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TOOL = str(ROOT / 'tools/analysis_tools/benchmark.py')

FAKE_AUTHORS = '''
import torch.nn as nn
from mmseg.models.builder import BACKBONES
from mmseg.utils import get_root_logger
from mmcv.runner import load_checkpoint


@BACKBONES.register_module()
class transnext_micro(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.stages = nn.ModuleList(
            [nn.Conv2d(3, 8, 4, 4)] + [nn.Conv2d(8 * 2 ** i, 16 * 2 ** i, 2, 2) for i in range(3)])

    def forward(self, x):
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs
'''


def _bench(*args, cwd=ROOT):
    return subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def test_tiny_run_writes_the_tables(tmp_path):
    out = tmp_path / 'bench'
    res = _bench('--arch', 'micro', '--threads', '1', '--repeats', '1', '--warmup', '0',
                 '--impls', 'torch', '--precision', 'fp32', '--matmul-n', '256', '--case',
                 'forward:64:interpolate:96', '--out', out)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.with_suffix('.json').read_text())
    (row, ) = data['results']
    assert (row['mode'], row['res'], row['img_size'], row['impl']) == ('forward', 64, 96, 'torch')
    assert row['macs'] > 1e8 and data['machine']['matmul_gmacs'] > 0
    assert 0 < row['model_mb'] < row['memory_mb']
    assert row['memory_mb'] == pytest.approx(row['model_mb'] + row['peak_mem_mb'])
    md = out.with_suffix('.md').read_text()
    assert '| forward | 64x64 | interpolate (96) | torch |' in md and 'x floor' in md
    assert 'not run (no `--authors-repo`)' in md and 'time ratio' not in md


def test_side_by_side_with_an_authors_checkout_and_bf16(tmp_path):
    backbone = tmp_path / 'authors/segmentation/upernet/transnext_native.py'
    backbone.parent.mkdir(parents=True)
    backbone.write_text(FAKE_AUTHORS)
    out = tmp_path / 'bench'
    res = _bench('--arch', 'micro', '--threads', '1', '--repeats', '1', '--warmup', '0',
                 '--impls', 'torch', '--matmul-n', '256', '--case', 'forward:64:interpolate',
                 '--case', 'train:64:extrapolate', '--train-memory-steps', '2',
                 '--authors-repo', tmp_path / 'authors', '--authors-commit', 'fake123',
                 '--references', '--out', out)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.with_suffix('.json').read_text())
    got = {(r['mode'], r['impl'], r['precision']): r for r in data['results']}
    assert set(got) == {(m, i, p) for m in ('forward', 'train') for i, p in
                        (('torch', 'fp32'), ('torch', 'bf16-autocast'), ('authors', 'fp32'))}
    assert 0 < got['forward', 'torch', 'bf16-autocast']['rel_err_vs_fp32'] < 0.1
    assert got['train', 'authors', 'fp32']['memory_steps'] == 2
    assert 'is_extrapolation=True' in got['train', 'authors', 'fp32']['model']
    assert data['machine']['authors']['commit'] == 'fake123'
    md = out.with_suffix('.md').read_text()
    assert "the authors' release: commit fake123" in md
    assert '| forward 64, interpolate, torch | transnext_micro(img_size=64' in md
    assert '| train 64, extrapolate, torch |' in md
    assert '| forward 64, interpolate | torch | bf16-autocast |' in md


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the no-GPU message')
def test_cuda_without_gpu_says_so_and_exits_0():
    res = _bench('--device', 'cuda')
    assert res.returncode == 0 and 'no CUDA device on this machine' in res.stdout
