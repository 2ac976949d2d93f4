"""bf16 mixed precision that also runs on CPU.

mmengine's AmpOptimWrapper refuses to start without a GPU, NPU, MLU or MUSA device, yet
bf16 autocast is a real CPU feature and bf16 needs no loss scaling (it has fp32's
exponent range). tools/train.py --bf16 uses this wrapper on machines without such a
device and AmpOptimWrapper(dtype='bfloat16') on those with one.
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.runner.amp import autocast


class BF16OptimWrapper(OptimWrapper):
    """OptimWrapper whose forward passes run under bf16 autocast on the model's device
    (CPU included). Gradients, optimizer state and checkpoints stay fp32."""

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        device_type = next(model.parameters()).device.type
        with super().optim_context(model), autocast(device_type=device_type,
                                                    dtype=torch.bfloat16):
            yield
