"""``register_fake`` / ``register_autograd`` for the torch.ops.mmtransnext operators through
the API this torch has (:data:`mmtransnext.compat.HAS_OP_REGISTRATION_API`).

torch >= 2.4: ``torch.library.register_fake`` / ``register_autograd``. Older torch (2.0-2.3):
the same functions registered with ``torch.library.Library.impl`` under the ``Meta`` key
(the fake kernel) and the ``Autograd`` key (an ``autograd.Function`` that runs the op below
autograd, then the same ``setup_context`` and backward). Same kernels, same formulas, so
the numbers are identical; only the wiring differs.
"""
import torch

from mmtransnext.compat import HAS_OP_REGISTRATION_API, below_autograd

_LIBRARIES = {}  # namespace -> Library('ns', 'IMPL'); kept alive, or torch drops the kernels


def _library(namespace: str):
    if namespace not in _LIBRARIES:
        _LIBRARIES[namespace] = torch.library.Library(namespace, 'IMPL')
    return _LIBRARIES[namespace]


def register_fake(qualname: str):
    """Decorator: ``fn`` is the fake (meta) kernel of the operator ``'ns::name'``."""
    if HAS_OP_REGISTRATION_API:
        return torch.library.register_fake(qualname)
    namespace, name = qualname.split('::')

    def decorate(fn):
        _library(namespace).impl(name, fn, 'Meta')
        return fn
    return decorate


def register_autograd(qualname: str, backward, setup_context) -> None:
    """``backward(ctx, *grads)`` is the derivative of ``'ns::name'``; ``setup_context(ctx,
    inputs, output)`` saves what it needs (torch.library.register_autograd's contract)."""
    if HAS_OP_REGISTRATION_API:
        torch.library.register_autograd(qualname, backward, setup_context=setup_context)
        return
    namespace, name = qualname.split('::')
    op = getattr(getattr(torch.ops, namespace), name).default

    class OpFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *inputs):
            with below_autograd():
                output = op(*inputs)
            setup_context(ctx, inputs, output)
            return output

        @staticmethod
        def backward(ctx, *grads):
            return backward(ctx, *grads)

    OpFunction.__name__ = OpFunction.__qualname__ = f'{name}_function'
    _library(namespace).impl(name, OpFunction.apply, 'Autograd')


__all__ = ['register_autograd', 'register_fake']
