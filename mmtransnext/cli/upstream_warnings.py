"""Warnings that the pinned upstream stack prints on every run of our tools and tests
(deprecations and fixed notices that no setting of ours can change), filtered in the tools'
entry points and in tests/conftest.py so that progress bars, logs and results stay
readable.

Each entry names the warning category, a regex of the message and a regex of the module
the warning is attributed to (the upstream module that raises or triggers it): the same
text attributed to any other module, and every other warning, still shows.
"""
import warnings

# (category, message regex, module regex); no ':' in either (pytest's filter lines)
UPSTREAM_WARNINGS = (
    # setuptools 80 on `import pkg_resources`: mmengine.utils.package_utils imports it and
    # reloads it on every is_installed() (the reload is attributed to importlib)
    (UserWarning, r'pkg_resources is deprecated as an API',
     r'(mmengine|mmcv|mmdet|mmseg|mmpretrain)(\..*)?$|importlib$'),
    # torch 2.12 on every @torch.jit.script / interface that mmcv, mmdet and timm apply
    (DeprecationWarning, r'`torch\.jit\.(script|interface)` is deprecated',
     r'torch\.jit\._script$'),
    # mmcv 2.1 on the `dropout` that mmseg's Mask2Former recipe (inherited by ours) passes
    (DeprecationWarning, r'The arguments `dropout` in MultiheadAttention has been deprecated',
     r'mmcv\.cnn\.bricks\.transformer$'),
    # mmseg 1.2: its own heads call build_loss; its LoadAnnotations warns on the
    # reduce_zero_label that ADE20K configs set; notices printed whatever the config says
    (UserWarning, r'``build_loss`` would be deprecated soon', r'mmseg\.models\.builder$'),
    (UserWarning, r'`reduce_zero_label` will be deprecated',
     r'mmseg\.datasets\.transforms\.loading$'),
    (UserWarning, r'Default ``avg_non_ignore`` is False',
     r'mmseg\.models\.losses\.cross_entropy_loss$'),
    (UserWarning, r'The draw is False, it means that the hook for visualization',
     r'mmseg\.engine\.hooks\.visualization_hook$'),
    # mmengine 0.10 when mmseg's SegTTAModel stores its [H, W] prediction (--aug-test)
    (UserWarning, r'The shape of value will convert from',
     r'mmengine\.structures\.pixel_data$'),
    # torch 2.12 on the TorchScript-based ONNX exporter, which the deploy tool picks on
    # purpose (dynamo=False, see mmtransnext/deploy/onnx_export.py), and that exporter's
    # constant-folding notice on every export
    (DeprecationWarning, r'You are using the legacy TorchScript-based ONNX export',
     r'mmtransnext\.deploy\.onnx_export$'),
    (UserWarning, r'Constant folding - Only steps=1 can be constant folded',
     r'torch\.onnx\._internal\.torchscript_exporter\.(jit_)?utils$'),
)


# Records of upstream loggers (logger name regex, message regex) that the same stack prints
# on every run: mmengine's own deprecation notices, and the IoUMetric notice about a prefix
# that mmseg's configs never set. Only a console that hides them (tools/demo.py's, through
# mmtransnext.cli.console_filter) uses this list; log files keep every record.
UPSTREAM_LOG_RECORDS = (
    (r'mmengine$', r'The prefix is not set in metric class IoUMetric'),
    (r'mmengine$', r'"FileClient" will be deprecated in future'),
    (r'mmengine$', r'"HardDiskBackend" is the alias of "LocalBackend"'),
)


def filter_upstream_warnings(entries=UPSTREAM_WARNINGS):
    """Ignore the known upstream warnings in this process (call it first in an entry
    point, before the upstream packages do their work)."""
    for category, message, module in entries:
        warnings.filterwarnings('ignore', message=message, category=category, module=module)


def filterwarnings_lines(entries=UPSTREAM_WARNINGS):
    """The same filters as pytest ``filterwarnings`` lines (action:message:category:module),
    for tests/conftest.py: pytest re-applies its own filters for every test."""
    lines = []
    for category, message, module in entries:
        name = category.__qualname__
        if category.__module__ != 'builtins':
            name = f'{category.__module__}.{name}'
        lines.append(f'ignore:{message}:{name}:{module}')
    return lines
