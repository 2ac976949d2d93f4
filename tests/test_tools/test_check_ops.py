"""tools/analysis_tools/check_ops.py: the CPU self-check passes (the Triton kernels in the
interpreter included), a wrong kernel fails it, a kernel not offered is listed with why."""
import pytest
import torch

from mmtransnext.ops import ext_loader, triton_support
from tools_testing import load_tool

check_ops = load_tool('analysis_tools/check_ops')

requires_ext = pytest.mark.skipif(ext_loader.load() is None,
                                  reason=f'mmtransnext._ext not built ({ext_loader.load_error()})')


@requires_ext
def test_cpu_self_check_passes(tmp_path):
    out = tmp_path / 'ops.md'
    assert check_ops.main(['--device', 'cpu', '--quick', '--repeat', '1', '--out', str(out)]) == 0
    report = out.read_text()
    for kernel in check_ops.KERNELS:
        if kernel == check_ops.TRITON and triton_support.unavailable_reason():
            assert f'| {kernel} | - | - | not offered here: ' in report
            continue
        for dtype in ('fp32', 'fp16', 'bf16'):
            assert f'| {kernel} | {dtype} |' in report
        timing = kernel != check_ops.TRITON  # the interpreter is not timed
        assert report.count(f'| {kernel} |') == 3 * 2 + timing  # checks + the timing row
    assert 'MISMATCH' not in report and 'All checks passed.' in report


def test_kernel_not_offered_names_the_reason(monkeypatch):
    monkeypatch.setattr(triton_support, 'unavailable_reason',
                        lambda: 'triton 2.0 is too old (the Triton kernels need triton >= 3.0)')
    kernels, missing = check_ops.offered('cpu')
    assert check_ops.TRITON not in kernels
    assert 'triton >= 3.0' in missing[check_ops.TRITON]


@requires_ext
def test_wrong_kernel_fails(monkeypatch, capsys):
    make = check_ops.KERNELS['sliding_av']

    def off_by_a_bit(*args, **kwargs):
        names, inputs, ext, ref = make(*args, **kwargs)
        return names, inputs, (lambda *t: ext(*t) * 1.001), ref

    monkeypatch.setitem(check_ops.KERNELS, 'sliding_av', off_by_a_bit)
    assert check_ops.main(['--device', 'cpu', '--quick', '--repeat', '1',
                           '--kernel', 'sliding_av']) == 1
    assert 'MISMATCH' in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the no-GPU message')
def test_cuda_without_gpu_is_an_error(capsys):
    assert check_ops.main(['--device', 'cuda']) == 1
    out = capsys.readouterr().out
    assert 'no CUDA device' in out or 'mmtransnext._ext does not import' in out
