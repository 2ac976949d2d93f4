"""Every test in this folder runs a whole tool (tools/train.py, test.py, the dist_*.sh and
slurm_*.sh scripts, demo, the analysis and deployment tools, pip wheel) as a subprocess or
in-process through its ``main``: all of them are marked ``e2e`` (registered in
tests/conftest.py), so ``pytest -m "not e2e"`` (`make test-fast`) leaves them out."""
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    # a conftest's hook sees the items of the whole session: mark only this folder's
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)
