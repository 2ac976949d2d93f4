"""Detection end to end: tools/train.py a few iterations, then tools/test.py on the saved
checkpoint gives COCO bbox (and segm) mAP."""
import pickle

from tools_testing import dino_config, mask_rcnn_config, test_tool, train


def _is_number(value):
    return isinstance(value, (int, float)) and value == value


def test_mask_rcnn(tmp_path, coco128):
    cfg = mask_rcnn_config(tmp_path, coco128)
    train(cfg, tmp_path / 'work')
    ckpt = tmp_path / 'work' / 'epoch_1.pth'
    assert ckpt.is_file()

    out = tmp_path / 'preds.pkl'
    metrics, _ = test_tool(cfg, ckpt, tmp_path / 'test', '--out', out, '--show-dir', 'vis')
    assert len(list((tmp_path / 'test' / 'vis').glob('*.jpg'))) == 2  # drawn predictions
    assert _is_number(metrics['coco/bbox_mAP']) and _is_number(metrics['coco/segm_mAP'])
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == 2  # one entry per val image

    # --aug-test: 3 scales x flip; InstanceSegTTAModel (a DetTTAModel keeping masks)
    metrics, proc = test_tool(cfg, ckpt, tmp_path / 'tta', '--aug-test',
                              '--pos-bias', 'extrapolate')
    assert "type='InstanceSegTTAModel'" in proc.stdout
    assert "set to 'extrapolate'" in proc.stdout
    assert _is_number(metrics['coco/bbox_mAP']) and _is_number(metrics['coco/segm_mAP'])


def test_dino_5scale(tmp_path, coco128):
    cfg = dino_config(tmp_path, coco128, scales=5)
    train(cfg, tmp_path / 'work')
    ckpt = tmp_path / 'work' / 'epoch_1.pth'
    metrics, _ = test_tool(cfg, ckpt, tmp_path / 'test')
    assert _is_number(metrics['coco/bbox_mAP'])


def test_dino_4scale(tmp_path, coco128):
    cfg = dino_config(tmp_path, coco128, scales=4)
    train(cfg, tmp_path / 'work')
    metrics, _ = test_tool(cfg, tmp_path / 'work' / 'epoch_1.pth', tmp_path / 'test')
    assert _is_number(metrics['coco/bbox_mAP'])
