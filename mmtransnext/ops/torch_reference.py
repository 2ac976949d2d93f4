"""A scope in which every dispatch point takes the torch path: the reference that a
kernel is compared with (the run-time self-check, tools/analysis_tools/check_ops.py)."""
import contextlib

_depth = [0]


@contextlib.contextmanager
def torch_reference():
    """Within: the dispatch points take the torch path."""
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1


def reference_active() -> bool:
    return _depth[0] > 0
