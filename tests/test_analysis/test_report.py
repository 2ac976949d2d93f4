"""mmtransnext.analysis.report: the tables from rows as the worker reports them."""
import argparse

import pytest

from mmtransnext.analysis.report import (NO_AUTHORS, authors_table, markdown,
                                         precision_table, references_table, round_ratio)

CASE = dict(mode='forward', res=512, pos_bias='interpolate', img_size=512, stage=None,
            loadavg_1min=[1.0, 1.5], batch=1)
INFO = dict(cpu='x', logical_cpus=2, threads=2, torch='2', python='3', platform='p',
            commit='abc1234', loadavg_1min_range=[1.0, 1.5], matmul_gmacs=50.0,
            matmul_gmacs_runs=[50.0, 45.0])
ARGS = argparse.Namespace(arch='tiny', device='cpu', batch=1, repeats=2, warmup=1,
                          threads=2, matmul_n=2048, train_memory_steps=3)


def row(impl, times, precision='fp32', **kw):
    return dict(CASE, impl=impl, precision=precision, times_ms=times,
                median_ms=sorted(times)[len(times) // 2], median_cpu_ms=1.0,
                peak_mem_mb=10.0, **kw)


def rows():
    return [row('fused', [400., 500., 600.], memory_mb=300., macs=25e9),
            row('fused', [200., 300., 300.], 'bf16-autocast', memory_mb=250.,
                rel_err_vs_fp32=0.02),
            row('authors', [1000., 2000., 1500.], memory_mb=900., model='transnext_tiny(...)'),
            row('swin', [600., 600., 600.], memory_mb=400., macs=30e9, model='mmdet Swin')]


def test_round_ratio_is_the_median_of_per_round_ratios():
    assert round_ratio(dict(times_ms=[1., 4., 3.]), dict(times_ms=[2., 2., 2.])) == 1.5


def test_authors_table_from_one_run():
    lines = authors_table(rows(), gmacs=50.0)
    assert len(lines) == 3  # header, rule, the fp32 row (bf16 is not set against theirs)
    # time ratio: rounds 0.4, 0.25, 0.4 -> median 0.4; memory 300 / 900; floor 0.5 s
    assert lines[2] == ('| forward 512, interpolate, fused | transnext_tiny(...) | 1.50 | '
                        '0.50 | 0.40x | 900 | 300 | 0.33x | 1.00 |')


def test_precision_and_references_tables():
    bf16 = precision_table(rows())[2]
    assert '| fused | bf16-autocast | 500.0 | 300.0 | 2.00x | 2.0e-02 | 300 | 250 |' in bf16
    refs = references_table(rows(), gmacs=50.0)
    assert refs[2].startswith('| forward 512, interpolate | TransNeXt (fused) | - | 25.0 | '
                              '500.0 | 20.0 |')
    assert '| Swin-T | mmdet Swin | 30.0 | 600.0 | 20.0 | 1.00 | 400 |' in refs[3]


def test_markdown_with_and_without_the_authors():
    info = dict(INFO, authors=dict(commit='c8a9974', file='f.py', sha256='0' * 12, path='/a'))
    md = markdown(rows(), info, ARGS)
    assert "the authors' release: commit c8a9974" in md and NO_AUTHORS not in md
    assert '| authors MB | ours MB | memory ratio |' in md
    assert '## Reduced precision against fp32' in md and '## Against Swin-T' in md
    plain = markdown([r for r in rows() if r['impl'] != 'authors'], INFO, ARGS)
    assert NO_AUTHORS in plain and 'time ratio' not in plain
    assert "the authors' release: not run" in plain


def test_cuda_rows_render_per_precision():
    """The GPU table (no GPU here: rows as a CUDA worker reports them): one row per
    implementation and precision, peak allocated memory, no CPU-only columns filled."""
    cuda = [dict(mode='train', res=512, pos_bias='interpolate', img_size=512, stage=None,
                 impl=impl, precision=precision, median_ms=10.0, median_cpu_ms=10.0,
                 times_ms=[10.0], peak_mem_mb=100.0, loadavg_1min=[0, 0], batch=2)
            for precision in ('fp32', 'fp16-autocast') for impl in ('torch', 'ext', 'triton')]
    info = dict(cpu='x', logical_cpus=16, threads=1, torch='2', python='3', platform='p',
                gpu='H100', cuda='12', loadavg_1min_range=[0, 0])
    args = argparse.Namespace(arch='tiny', device='cuda', batch=1, repeats=5, warmup=1,
                              threads=1, matmul_n=2048)
    md = markdown(cuda, info, args)
    assert 'peak allocated MB' in md
    for impl in ('torch', 'ext', 'triton'):
        assert f'| train | 512x512 | interpolate (512) | {impl} | 10.0 |' in md
        assert f'| train (fp16-autocast) | 512x512 | interpolate (512) | {impl} | 10.0 |' in md
    assert '| fp16-autocast | 10.0 | 10.0 | 1.00x | - | - | - |' in md


@pytest.mark.parametrize('impl', ['swin', 'convnext'])
def test_reference_names(impl):
    from mmtransnext.analysis.references import BUILDERS, NAMES
    assert impl in BUILDERS and NAMES[impl].endswith('-T')
