"""The demo's console: mmengine's INFO records (one- and multi-line) and the known upstream
notices are hidden; progress bars, headers, other warnings, errors, tracebacks and plain
prints are shown, however the output is cut into chunks."""

import pytest

from mmtransnext.cli.console_filter import ConsoleFilter
from tools_testing import load_tool

INFO = b'11/22 04:30:58 - mmengine - INFO - '
OUTPUT = [
    (b'starting\n', True),
    (INFO + b'\n', False),                                       # environment header
    (b'System environment:\n', False),                           # ... its lines
    (b'    sys.platform: linux\n', False),
    (INFO + b'Config:\n', False),
    (b"model = dict(type='EncoderDecoder')\n", False),
    (b'11/22 04:30:59 - mmengine - \x1b[5m\x1b[4m\x1b[33mWARNING\x1b[0m - The prefix is not set '
     b'in metric class IoUMetric.\n', False),                    # known upstream notice
    (b'11/22 04:30:59 - mmengine - WARNING - my own warning\n', True),
    (b'(more of it)\n', True),
    (b'\ntrain:\n', True),
    (b'[          ] 0/500, elapsed: 0s, ETA:\r', True),
    (b'[          ] 1/500, 1.1 task/s, elapsed: 1s, ETA:   449s', True),
    (INFO + b'Iter(train) [ 50/500]  lr: 1e-4  loss: 1.2\r', False),  # on the bar's line
    (b'[>         ] 51/500, 1.0 task/s, elapsed: 50s, ETA:   449s', True),
    (INFO + b'Iter(train) [ 52/500]  lr: 1e-4  loss: 1.1\n', False),
    (b'\r', True),  # the next redraw
    (b'[>         ] 53/500, 1.0 task/s, elapsed: 52s, ETA:   447s\n', True),
    (INFO + b'Saving checkpoint at 500 iterations\n', False),
    (b'tools/x.py:3: UserWarning: a user warning\n', True),
    (INFO + b'done\n', False),
    (b'Traceback (most recent call last):\n', True),
    (b'  File "x.py", line 1\n', True),
    (b'ValueError: bad\n', True),
    (b'11/22 04:31:00 - mmengine - ERROR - it broke\n', True),
]


def _expected():
    return b''.join(text for text, show in OUTPUT if show)


@pytest.mark.parametrize('chunk', [1, 7, 64, 1 << 16])
def test_shown_and_hidden(chunk):
    data = b''.join(text for text, _ in OUTPUT)
    console = ConsoleFilter()
    shown = b''.join(console.feed(data[i:i + chunk]) for i in range(0, len(data), chunk))
    assert shown + console.flush() == _expected()


def test_demo_run_keeps_everything_in_the_log(tmp_path, capfdbinary):
    demo = load_tool('demo')
    script = b''.join(text for text, _ in OUTPUT[:6]) + b'test:\nplain print\n'
    log = tmp_path / 'step' / 'console.log'
    demo.run(['-c', f'import sys; sys.stdout.buffer.write({script!r})'], None, str(log))
    out = capfdbinary.readouterr().out
    assert b'\ntest:\nplain print\n' in out and b'\nSystem environment:' not in out
    assert log.read_bytes() == script


def test_demo_run_failure_prints_the_end_of_the_log(tmp_path, capfdbinary):
    demo = load_tool('demo')
    log = tmp_path / 'console.log'
    code = f'import sys; sys.stdout.buffer.write({INFO + b"context"!r}); sys.exit(3)'
    with pytest.raises(SystemExit) as exit_info:
        demo.run(['-c', code], None, str(log))
    assert exit_info.value.code == 3
    out = capfdbinary.readouterr().out
    assert b'FAILED (exit 3)' in out and b'context' in out  # the hidden record, from the log
