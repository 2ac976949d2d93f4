"""mmtransnext.analysis.cases: case parsing and what runs side by side in each case."""
import argparse

import pytest

from mmtransnext.analysis.cases import (CPU_CASES, Case, default_cases, parse_case,
                                        variants, windowed_stages)


def test_case_parsing_takes_an_optional_img_size():
    assert parse_case('forward:1024:interpolate:512') == ('forward', 1024, 'interpolate', 512)
    assert parse_case('train:512:linear') == Case('train', 512, 'linear', 512)
    with pytest.raises(argparse.ArgumentTypeError, match='MODE:RES:POS_BIAS'):
        parse_case('forward:512')
    with pytest.raises(argparse.ArgumentTypeError, match='mode must be one of'):
        parse_case('fwd:512:linear')


def test_default_cpu_cases_are_issue_18s():
    cases = default_cases(cuda=False)
    assert [c for c in cases if not c.mode.startswith('ops')] == [
        ('forward', 512, 'interpolate', 512), ('forward', 512, 'extrapolate', 512),
        ('forward', 1024, 'interpolate', 512), ('train', 512, 'interpolate', 512)]
    assert len(cases) == len(CPU_CASES)


def test_variants_put_ours_authors_and_references_side_by_side():
    plain = parse_case('forward:512:interpolate')
    assert variants(plain, authors=True, references=('swin', 'convnext')) == [
        ('fused', 'fp32'), ('fused', 'bf16-autocast'), ('authors', 'fp32'),
        ('swin', 'fp32'), ('convnext', 'fp32')]
    # no authors without their checkout; references only at the model's own size
    assert variants(plain, references=('swin', )) == [
        ('fused', 'fp32'), ('fused', 'bf16-autocast'), ('swin', 'fp32')]
    multi = parse_case('forward:1024:interpolate:512')
    assert variants(multi, authors=True, references=('swin', ))[-1] == ('authors', 'fp32')
    # their backbone has no 'linear' mode
    assert ('authors', 'fp32') not in variants(parse_case('train:512:linear'), authors=True)
    assert variants(parse_case('ops-train:512:-'), authors=True) == [
        ('ext', 'fp32'), ('torch', 'fp32'), ('unfold', 'fp32')]
    assert variants(plain, impls=('torch', 'ext'), precisions=('fp32', ), cuda=True) == [
        ('torch', 'fp32'), ('ext', 'fp32')]


def test_windowed_stages_follow_the_stage_stride():
    stages = windowed_stages('tiny', 512)
    assert [(s[0], s[3]) for s in stages] == [(0, 128), (1, 64), (2, 32)]
    assert stages[2][1:3] == (12, 24) and stages[2][5] == 15  # heads, head dim, blocks
