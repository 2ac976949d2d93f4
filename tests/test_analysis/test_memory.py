"""mmtransnext.analysis.memory: the probes on this process."""
import torch

from mmtransnext.analysis.memory import MB, model_mb, peak_rise_mb, rss_mb


def test_model_mb_counts_parameters_and_buffers():
    m = torch.nn.BatchNorm1d(1000)  # 2000 parameters; buffers: 2000 fp32 + one int64 counter
    assert model_mb(m) == (4000 * 4 + 8) / MB


def test_peak_rise_sees_a_transient_allocation():
    def run():
        torch.ones(64 * MB // 4).sum()  # 64 MB, touched, freed before the probe reads
    peak, base, counter = peak_rise_mb(run)
    assert counter in ('VmHWM', 'ru_maxrss') and base > 0 and rss_mb() > 0
    if counter == 'VmHWM':
        assert peak - base > 48
