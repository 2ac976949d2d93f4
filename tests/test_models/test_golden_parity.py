"""Parity with the authors' reference implementation (tests/data/golden_README.md): 1e-4 max-abs."""
import pytest

from golden_testing import check_backbone_parity


@pytest.mark.parametrize('index', range(4))
def test_backbone_matches_reference(golden_w3, index):
    check_backbone_parity(golden_w3, index)
