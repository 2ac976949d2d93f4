"""Memory probes of one process: RSS, the kernel's peak counter (VmHWM) and its restart
through /proc/self/clear_refs, and a model's parameters + buffers."""
import os
import resource

MB = 2 ** 20
# glibc maps every block of at least this size on its own and unmaps it on free, so the
# RSS follows the live tensors (its default adaptive threshold keeps freed blocks mapped)
MALLOC_MMAP_THRESHOLD = 65536


def rss_mb():
    """Resident set size now."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / MB


def maxrss_mb():
    """getrusage's peak RSS (never restarts)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB  # KiB on Linux


def reset_peak_rss():
    """Restart the kernel's peak-RSS counter (VmHWM) from the current RSS; False if the
    kernel does not allow it."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def vm_hwm_mb():
    """The kernel's peak RSS since the last :func:`reset_peak_rss`."""
    with open('/proc/self/status') as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith('VmHWM:'))
    return kb * 1024 / MB


def model_mb(model):
    """Parameters + buffers."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / MB


def peak_rise_mb(run):
    """Run ``run()`` and return (peak RSS, RSS before, counter name): the peak is VmHWM
    restarted just before, or ru_maxrss where clear_refs cannot be written."""
    import gc
    gc.collect()
    hwm = reset_peak_rss()
    base = rss_mb()
    run()
    return (vm_hwm_mb() if hwm else maxrss_mb()), base, 'VmHWM' if hwm else 'ru_maxrss'
