"""A toy mmengine training for the tests of the checkpoint and engine parts: random data
with numpy / python draws per sample, a model with dropout, a validation metric, and
mmengine's own Runner around them."""
import random

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mmtransnext  # noqa: F401 (registers SafeCheckpointHook and the file backend)
from mmtransnext.checkpoint.safe_load import torch_load_allowed


class RandomData(Dataset):
    """Random augmentation in the pipeline: numpy and python draws per sample."""

    def __len__(self):
        return 6

    def __getitem__(self, index):
        x = torch.full((4,), float(index))
        x = x + float(np.random.uniform(-1, 1)) * random.choice([1, -1])
        return dict(inputs=x)


class DropModel(BaseModel):
    """Dropout: torch draws in the forward."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 1)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.fc(self.drop(torch.stack(inputs)))
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return [dict(out=o) for o in out]


class Mean(BaseMetric):
    """Validation during training (it must not shift the training's RNG streams)."""

    def process(self, data_batch, data_samples):
        self.results.extend(float(s['out']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(mean=float(np.mean(results)))


def plain_runner(work_dir, hook='SafeCheckpointHook', max_iters=4, resume=False, model=None,
                 interval=2, custom_hooks=(), clip_grad=None, **hook_kw):
    """mmengine's own Runner: ``interval`` iterations per checkpoint, validation every 2."""
    torch.manual_seed(0)
    loader = dict(dataset=RandomData(), sampler=dict(type='DefaultSampler', shuffle=True),
                  batch_size=2, num_workers=0)
    return Runner(
        model=model or DropModel(), work_dir=str(work_dir), train_dataloader=loader,
        val_dataloader=dict(loader, sampler=dict(type='DefaultSampler', shuffle=False)),
        val_evaluator=[Mean()], val_cfg=dict(),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01), clip_grad=clip_grad),
        default_hooks=dict(checkpoint=dict(type=hook, by_epoch=False, interval=interval,
                                           **hook_kw),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=list(custom_hooks), randomness=dict(seed=0), resume=resume)


def state_tensors(path):
    ckpt = torch_load_allowed(path)
    return [*ckpt['state_dict'].values(),
            *[t for s in ckpt['optimizer']['state'].values() for t in s.values()]]


def same_tensors(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
