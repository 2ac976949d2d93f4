"""Test helper imported through custom_imports: records the dtype of the backbone's last
output in each training forward pass (not validation) to ``work_dir/train_dtypes.txt``."""
import os.path as osp

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class DtypeProbeHook(Hook):

    def before_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        self.seen = []
        model.backbone.register_forward_hook(self._record)

    def _record(self, module, args, out):
        if module.training:
            self.seen.append(str(out[-1].dtype))

    def after_train(self, runner):
        with open(osp.join(runner.work_dir, 'train_dtypes.txt'), 'w') as f:
            f.write('\n'.join(self.seen))
