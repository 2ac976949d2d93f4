"""Segmentation end to end: UPerNet and Mask2Former trained a few iterations on toy
ADE20K, tested for mIoU; UPerNet also with ms+flip TTA in both position-bias modes."""
import pytest

from tools_testing import mask2former_config, test_tool, train, upernet_config


@pytest.fixture(scope='module')
def upernet(tmp_path_factory, ade64):
    tmp = tmp_path_factory.mktemp('upernet')
    cfg = upernet_config(tmp, ade64)
    train(cfg, tmp / 'work')
    ckpt = tmp / 'work' / 'iter_2.pth'
    assert ckpt.is_file()
    return cfg, ckpt, tmp


def _is_number(value):
    return isinstance(value, (int, float)) and value == value


def test_upernet(upernet):
    cfg, ckpt, tmp = upernet
    metrics, _ = test_tool(cfg, ckpt, tmp / 'test', '--show-dir', 'vis',
                           '--out', tmp / 'pred_png')
    assert _is_number(metrics['mIoU'])
    assert len(list((tmp / 'test' / 'vis').rglob('*.png'))) == 2  # drawn predictions
    assert len(list((tmp / 'pred_png').glob('*.png'))) == 2     # raw predictions


@pytest.mark.parametrize('mode', ['interpolate', 'extrapolate'])
def test_upernet_aug_test(upernet, mode):
    cfg, ckpt, tmp = upernet
    metrics, proc = test_tool(cfg, ckpt, tmp / f'tta_{mode}', '--aug-test',
                              '--pos-bias', mode)
    assert "type='RunningSumSegTTAModel'" in proc.stdout  # SegTTAModel, bounded memory
    assert f"position bias of 1 TransNeXt backbone(s) set to '{mode}'" in proc.stdout
    assert _is_number(metrics['mIoU'])


def test_mask2former(tmp_path, ade64):
    cfg = mask2former_config(tmp_path, ade64)
    train(cfg, tmp_path / 'work')
    metrics, _ = test_tool(cfg, tmp_path / 'work' / 'iter_2.pth', tmp_path / 'test')
    assert _is_number(metrics['mIoU'])
