from .export_guard import tracing_for_export
from .sliding_window import requested_impl, sliding_window_av, sliding_window_qk

__all__ = ['sliding_window_qk', 'sliding_window_av', 'requested_impl', 'tracing_for_export']
