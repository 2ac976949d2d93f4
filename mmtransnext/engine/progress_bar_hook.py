from mmengine.hooks import Hook
from mmengine.utils import ProgressBar

# the bars' names, printed as a header line ("train:") above each bar
BAR_KEYS = ('train', 'val', 'test')


class ProgressBarHook(Hook):
    """A terminal progress bar over training iterations and over each val/test pass.

    Add it with ``custom_hooks = [dict(type='ProgressBarHook')]``. Only rank 0 draws.
    """

    priority = 'VERY_LOW'

    def __init__(self):
        self._bars = {}

    def _start(self, runner, key, total):
        if runner.rank == 0 and total:
            print(f'\n{key}:', flush=True)
            self._bars[key] = ProgressBar(total)

    def _step(self, key):
        bar = self._bars.get(key)
        if bar is not None:
            bar.update()
            if bar.completed >= bar.task_num:
                print(flush=True)
                del self._bars[key]

    def before_train(self, runner):
        done = runner.iter
        self._start(runner, 'train', runner.max_iters - done)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._step('train')

    def before_val_epoch(self, runner):
        self._start(runner, 'val', len(runner.val_dataloader))

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._step('val')

    def before_test_epoch(self, runner):
        self._start(runner, 'test', len(runner.test_dataloader))

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._step('test')
