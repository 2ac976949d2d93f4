from .attention import AttentionInputs, aggregated_attention
from .export_guard import tracing, tracing_for_export
from .sliding_window import requested_impl, sliding_window_av, sliding_window_qk

__all__ = ['sliding_window_qk', 'sliding_window_av', 'requested_impl', 'AttentionInputs',
           'aggregated_attention', 'tracing', 'tracing_for_export']
