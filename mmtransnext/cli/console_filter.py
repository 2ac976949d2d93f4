"""What a console shows of a child process's output: progress, warnings, errors, prints.

tools/demo.py runs tools/train.py and tools/test.py as child processes. mmengine logs at INFO
to the console as well as to the log file: the environment, the whole config, the hook
table, every logging interval. The demo keeps all of it in a file per step and shows the
rest: ProgressBarHook's bars and their headers, WARNING and ERROR records (minus the known
upstream notices of :data:`~mmtransnext.cli.upstream_warnings.UPSTREAM_LOG_RECORDS`),
Python warnings and tracebacks, and anything the child prints itself.

The output is cut at every newline and carriage return (progress bars redraw with ``\r``)
and before a record that follows a bar on the same line.
A logger record starts with mmengine's ``mm/dd HH:MM:SS - name - LEVEL - `` prefix; the
lines after it (a multi-line record: the config, the environment) share its fate until the
next record, progress bar, bar header, traceback or Python warning.
"""
import re

from mmtransnext.engine.progress_bar_hook import BAR_KEYS

from .upstream_warnings import UPSTREAM_LOG_RECORDS

_ANSI = re.compile(rb'\x1b\[[0-9;]*m')
_RECORD = re.compile(rb'^\d\d/\d\d \d\d:\d\d:\d\d - (\S+) - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - ')
# shown whatever precedes them: progress bars, their headers, tracebacks, Python warnings
_SHOWN = re.compile(rb'^(\[[ >]*\] \d+/\d+|(' + '|'.join(BAR_KEYS).encode() + rb'):\s*$'
                    rb'|Traceback \(most recent call last\):|\S+:\d+: \w*Warning: )')
_CUT = re.compile(rb'[\r\n]')
# a record's start inside a piece: a bar redrawn without a newline, then a record
_TIMESTAMP = re.compile(rb'\d\d/\d\d \d\d:\d\d:\d\d - ')
HIDDEN_LEVELS = (b'DEBUG', b'INFO')


class ConsoleFilter:
    """Feed it the child's output bytes; it returns the bytes to show.

    Args:
        hidden_records: (logger regex, message regex) of WARNING / ERROR records to hide
            as well.
    """

    def __init__(self, hidden_records=UPSTREAM_LOG_RECORDS):
        self._hidden_records = [(re.compile(name.encode()), re.compile(message.encode()))
                                for name, message in hidden_records]
        self._pending = b''
        self._hiding = False

    def feed(self, data: bytes) -> bytes:
        """The part of ``data`` to show; an unterminated last piece waits for the next call
        (or :meth:`flush`)."""
        self._pending += data
        shown = []
        while True:
            cut = _CUT.search(self._pending)
            if cut is None:
                return b''.join(shown)
            piece, self._pending = self._pending[:cut.end()], self._pending[cut.end():]
            shown += [part for part in _split_records(piece) if self._show(part)]

    def flush(self) -> bytes:
        piece, self._pending = self._pending, b''
        return b''.join(part for part in _split_records(piece) if self._show(part))

    def _show(self, piece: bytes) -> bool:
        text = _ANSI.sub(b'', piece)
        if text == b'\r':  # a bar's redraw after a hidden record: keeps bars on one line
            return True
        record = _RECORD.match(text)
        if record is not None:
            name, level = record.groups()
            message = text[record.end():]
            self._hiding = level in HIDDEN_LEVELS or any(
                n.match(name) and m.search(message) for n, m in self._hidden_records)
        elif _SHOWN.match(text):
            self._hiding = False
        return not self._hiding


def _split_records(piece: bytes):
    """The piece, cut before every record that starts inside it."""
    starts = [m.start() for m in _TIMESTAMP.finditer(piece) if m.start() > 0]
    return [piece[a:b] for a, b in zip([0] + starts, starts + [len(piece)])]
