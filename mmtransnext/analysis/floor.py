"""The matmul floor: the GMAC/s of a large fp32 matmul on this machine and thread count,
against which a forward's multiply-adds give its "x floor"."""
import statistics
import time

MATMUL_N = 2048


def matmul_gmacs(threads, n=MATMUL_N, repeats=7):
    """GMAC/s of an n x n by n x n fp32 matmul (median of ``repeats`` after one warm-up)."""
    import torch
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return n ** 3 / statistics.median(times) / 1e9


def times_floor(median_ms, macs, gmacs):
    """Median time over the floor (MACs at ``gmacs`` GMAC/s); None where either is unknown."""
    return median_ms / (macs / gmacs / 1e6) if macs and gmacs else None
