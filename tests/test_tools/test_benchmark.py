"""tools/analysis_tools/benchmark.py on a tiny case: the columns of issue 9 (memory as
parameters + buffers + peak working set, the matmul floor) and the authors' comparison."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools/analysis_tools'))


def test_case_parsing_takes_an_optional_img_size():
    from benchmark import parse_case
    assert parse_case('forward:1024:interpolate:512') == ('forward', 1024, 'interpolate', 512)
    assert parse_case('train:512:linear') == ('train', 512, 'linear', 512)
    with pytest.raises(argparse.ArgumentTypeError, match='MODE:RES:POS_BIAS'):
        parse_case('forward:512')
    with pytest.raises(argparse.ArgumentTypeError, match='mode must be one of'):
        parse_case('fwd:512:linear')


def test_authors_table_sets_ours_against_their_figures():
    from benchmark import _authors_table
    row = dict(mode='forward', res=1024, pos_bias='interpolate', img_size=512, impl='ext',
               median_ms=13000.0, memory_mb=2024.0)
    other = dict(row, impl='torch', median_ms=1.0)
    lines = _authors_table([other, row])
    assert len(lines) == 3  # header, rule, the one case measured
    assert '| forward 1024, interpolate (img_size 512), ext | 26.00 | 13.00 | 0.50x | 4048 | ' \
           '2024 | 0.50x |' == lines[2]
    fused = dict(row, impl='fused', median_ms=6500.0)  # the default path wins when measured
    assert '(img_size 512), fused | 26.00 | 6.50 | 0.25x |' in _authors_table([other, row, fused])[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the no-GPU message')
def test_cuda_without_gpu_says_so_and_exits_0(capsys):
    from benchmark import main
    assert not main(['--device', 'cuda'])
    assert 'no CUDA device on this machine' in capsys.readouterr().out


def test_tiny_run_writes_the_tables(tmp_path):
    out = tmp_path / 'bench'
    res = subprocess.run(
        [sys.executable, str(ROOT / 'tools/analysis_tools/benchmark.py'), '--arch', 'micro',
         '--threads', '1', '--repeats', '1', '--warmup', '0', '--impls', 'torch',
         '--matmul-n', '256', '--case', 'forward:64:interpolate:96', '--out', str(out)],
        capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.with_suffix('.json').read_text())
    (row, ) = data['results']
    assert (row['mode'], row['res'], row['img_size'], row['impl']) == ('forward', 64, 96, 'torch')
    assert row['macs'] > 1e8 and data['machine']['matmul_gmacs'] > 0
    assert 0 < row['model_mb'] < row['memory_mb']
    assert row['memory_mb'] == pytest.approx(row['model_mb'] + row['peak_mem_mb'])
    md = out.with_suffix('.md').read_text()
    assert '| forward | 64x64 | interpolate (96) | torch |' in md and 'x floor' in md


def test_cuda_rows_render_per_precision():
    """The GPU table (no GPU here: rows as a CUDA worker reports them): one row per
    implementation and precision, peak allocated memory, no CPU-only columns filled."""
    from benchmark import markdown
    rows = [dict(mode='train', res=512, pos_bias='interpolate', img_size=512, stage=None,
                 impl=impl, precision=precision, median_ms=10.0, median_cpu_ms=10.0,
                 peak_mem_mb=100.0, loadavg_1min=[0, 0], batch=2)
            for precision in ('fp32', 'fp16-autocast') for impl in ('torch', 'ext', 'triton')]
    info = dict(cpu='x', logical_cpus=16, threads=1, torch='2', python='3', platform='p',
                gpu='H100', cuda='12', loadavg_1min_range=[0, 0])
    args = argparse.Namespace(arch='tiny', device='cuda', batch=1, repeats=5, warmup=1,
                              threads=1, matmul_n=2048)
    md = markdown(rows, info, args)
    assert 'peak allocated MB' in md
    for impl in ('torch', 'ext', 'triton'):
        assert f'| train | 512x512 | interpolate (512) | {impl} | 10.0 |' in md
        assert f'| train (fp16-autocast) | 512x512 | interpolate (512) | {impl} | 10.0 |' in md
