"""Run an exported graph in onnxruntime (CPU) and compare it with PyTorch eager.

:func:`compare` gives the max abs difference per output; :func:`latency` the median
wall-clock time of both on the same input with the same number of threads, the runs
interleaved (ORT, eager, ORT, ...) so that other load on the machine hits both alike.
"""
import statistics
import time
from typing import NamedTuple

import numpy as np
import torch

TOLERANCE = 1e-4  # fp32 parity, as for the golden outputs


class Latency(NamedTuple):
    """Median latency of one input through onnxruntime and through eager PyTorch."""
    ort_ms: float
    eager_ms: float
    runs: int
    threads: int


def ort_session(path, threads):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])


def compare(session, graph, x):
    """{output name: max abs difference between onnxruntime and PyTorch eager}."""
    with torch.no_grad():
        expected = graph(x)
    names = [o.name for o in session.get_outputs()]
    got = session.run(names, {session.get_inputs()[0].name: x.numpy()})
    if len(got) != len(expected):
        raise RuntimeError(f'the ONNX graph has {len(got)} outputs, the model {len(expected)}')
    for name, g, e in zip(names, got, expected):
        if g.shape != tuple(e.shape):
            raise RuntimeError(f'{name}: onnxruntime gives shape {g.shape}, the model '
                               f'{tuple(e.shape)}')
    return {name: float(np.abs(g - e.numpy()).max()) if g.size else 0.0
            for name, g, e in zip(names, got, expected)}


def latency(session, graph, x, threads, runs=5, warmup=1):
    """Median ms per forward of onnxruntime and of PyTorch eager (``threads`` each)."""
    feed = {session.get_inputs()[0].name: x.numpy()}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    times = {'ort': [], 'eager': []}
    try:
        with torch.no_grad():
            for i in range(warmup + runs):
                for what, run in (('ort', lambda: session.run(None, feed)),
                                  ('eager', lambda: graph(x))):
                    start = time.perf_counter()
                    run()
                    if i >= warmup:
                        times[what].append((time.perf_counter() - start) * 1e3)
    finally:
        torch.set_num_threads(previous)
    return Latency(statistics.median(times['ort']), statistics.median(times['eager']),
                   runs, threads)
