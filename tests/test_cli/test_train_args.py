"""tools/train.py and tools/test.py option handling (no training): precision, resume,
auto-scale-lr, cfg-options, task detection, TTA wiring."""
import pytest
from mmengine.config import Config

from tools_testing import CONFIGS, load_tool

UPERNET = CONFIGS / 'upernet/upernet_transnext_tiny.py'
MASK_RCNN = CONFIGS / 'mask_rcnn/mask-rcnn_transnext_tiny.py'
DINO = CONFIGS / 'dino/dino-5scale_transnext_tiny.py'
CLS = CONFIGS / 'transnext/transnext_tiny.py'


@pytest.fixture(scope='module')
def train_py():
    return load_tool('train')


@pytest.fixture(scope='module')
def test_py():
    return load_tool('test')


def test_amp_and_bf16(train_py):
    def wrapper(flag, amp_device):
        cfg = Config.fromfile(UPERNET)
        train_py.apply_precision(cfg, amp=flag == 'amp', bf16=flag == 'bf16',
                                 amp_device=amp_device)
        assert cfg.optim_wrapper.constructor == 'TransNeXtOptimWrapperConstructor'
        return cfg.optim_wrapper

    amp = wrapper('amp', amp_device=True)
    assert amp.type == 'AmpOptimWrapper' and amp.loss_scale == 'dynamic' and 'dtype' not in amp
    bf16 = wrapper('bf16', amp_device=True)
    assert bf16.type == 'AmpOptimWrapper'
    assert bf16.dtype == 'bfloat16' and 'loss_scale' not in bf16
    assert wrapper('bf16', amp_device=False).type == 'BF16OptimWrapper'
    with pytest.raises(SystemExit, match='on CPU use --bf16'):
        wrapper('amp', amp_device=False)
    with pytest.raises(SystemExit):
        train_py.parse_args([str(UPERNET), '--amp', '--bf16'])


def test_resume_and_scale_lr(train_py, tmp_path):
    # a work dir without checkpoints: nothing to resume, training starts from the beginning
    cfg = train_py.build_cfg(train_py.parse_args(
        [str(MASK_RCNN), '--resume', '--work-dir', str(tmp_path / 'new')]))
    assert cfg.resume is False and cfg.load_from is None
    cfg = train_py.build_cfg(train_py.parse_args([str(MASK_RCNN), '--resume', 'x/iter_5.pth']))
    assert cfg.resume is True and cfg.load_from == 'x/iter_5.pth'
    cfg = train_py.build_cfg(train_py.parse_args([str(MASK_RCNN), '--auto-scale-lr']))
    assert cfg.auto_scale_lr.enable is True and cfg.auto_scale_lr.base_batch_size == 16
    cfg = train_py.build_cfg(train_py.parse_args([str(UPERNET), '--auto-scale-lr']))
    assert cfg.auto_scale_lr.enable is True
    cfg = train_py.build_cfg(train_py.parse_args(
        [str(UPERNET), '--work-dir', str(tmp_path), '--cfg-options',
         'model.backbone.init_cfg=None', 'train_cfg.max_iters=10']))
    assert cfg.model.backbone.init_cfg is None and cfg.train_cfg.max_iters == 10
    assert cfg.work_dir == str(tmp_path)
    cfg = train_py.build_cfg(train_py.parse_args([str(MASK_RCNN)]))
    assert cfg.work_dir.endswith('work_dirs/mask-rcnn_transnext_tiny')


@pytest.mark.parametrize('config,task', [(MASK_RCNN, 'det'), (DINO, 'det'),
                                         (UPERNET, 'seg'), (CLS, 'cls')])
def test_task_detection(config, task):
    from mmtransnext.cli.task import detect_task
    cfg = Config.fromfile(str(config))
    assert detect_task(cfg) == task
    cfg.default_scope = None  # falls back on the model type
    assert detect_task(cfg) == task


def test_aug_test_wiring(test_py):
    cfg, task = test_py.build_cfg(test_py.parse_args([str(UPERNET), 'c.pth', '--aug-test']))
    assert task == 'seg' and cfg.model.type == 'RunningSumSegTTAModel'
    assert cfg.model.module.backbone.type == 'TransNeXt'
    assert cfg.test_dataloader.dataset.pipeline == cfg.tta_pipeline

    cfg, task = test_py.build_cfg(test_py.parse_args([str(DINO), 'c.pth', '--aug-test']))
    assert task == 'det' and cfg.model.type == 'DetTTAModel'
    tta = cfg.test_dataloader.dataset.pipeline[-1]
    assert tta.type == 'TestTimeAug'
    assert [t.scale for t in tta.transforms[0]] == [(1066, 640), (1333, 800), (1600, 960)]
    assert [t.prob for t in tta.transforms[1]] == [1.0, 0.0]
    assert 'flip' in tta.transforms[-1][0].meta_keys

    cfg, _ = test_py.build_cfg(test_py.parse_args([str(MASK_RCNN), 'c.pth', '--aug-test']))
    assert cfg.model.type == 'InstanceSegTTAModel'

    cfg, task = test_py.build_cfg(test_py.parse_args([str(CLS), 'c.pth', '--aug-test']))
    assert task == 'cls' and cfg.model.type == 'AverageClsScoreTTA'


def test_out_rules(test_py):
    with pytest.raises(ValueError, match='pkl'):
        test_py.build_cfg(test_py.parse_args([str(CLS), 'c.pth', '--out', 'folder']))
    cfg, _ = test_py.build_cfg(test_py.parse_args([str(UPERNET), 'c.pth', '--out', 'pngs']))
    assert cfg.test_evaluator.output_dir == 'pngs' and cfg.test_evaluator.keep_results
