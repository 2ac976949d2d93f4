"""Golden backbone parity (tests/test_models/test_golden_parity.py) with MMTRANSNEXT_OPS=ext:
the compiled kernels reproduce the authors' reference outputs to the same 1e-4, with the
fused aggregated attention (default) and with the window kernels (MMTRANSNEXT_FUSED=0)."""
import pytest

from golden_testing import check_backbone_parity
from mmtransnext.ops import attention, sliding_window
from ops_testing import requires_ext


@requires_ext
@pytest.mark.parametrize('fused', [True, False])
@pytest.mark.parametrize('index', range(4))
def test_backbone_matches_reference_with_ext(golden_w3, index, fused, monkeypatch):
    monkeypatch.setenv('MMTRANSNEXT_OPS', 'ext')

    def torch_path_used(*args):
        raise AssertionError('MMTRANSNEXT_OPS=ext fell back to the torch path')

    monkeypatch.setattr(sliding_window, 'sliding_qk_torch', torch_path_used)
    monkeypatch.setattr(sliding_window, 'sliding_av_torch', torch_path_used)
    if fused:
        monkeypatch.setattr(attention, 'aggregated_attention_torch', torch_path_used)
    else:
        monkeypatch.setenv('MMTRANSNEXT_FUSED', '0')
    check_backbone_parity(golden_w3, index)
