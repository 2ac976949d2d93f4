"""The card's three usage lines, typed as a user types them, shrunk onto toy COCO through
``--cfg-options`` only (micro arch, 128 px, one iteration, one encoder / decoder layer):

    tools/dist_train.sh configs/dino/dino-5scale_transnext_base.py 8    (here: 2 CPU processes)
    a third-party config with custom_imports = dict(imports=['mmtransnext'])
    python tools/test.py <config> <checkpoint> --aug-test
"""
import shutil
import sys

from tools_testing import (CLASSES, MICRO_DIMS, ROOT, read_metrics, run, run_on_a_free_port,
                           tool_env)

CARD_CONFIG = 'configs/dino/dino-5scale_transnext_base.py'
CLASS_LIST = '[' + ','.join(CLASSES) + ']'


def _shrink_dino():
    """TransNeXt-micro without pre-trained weights; 100 queries and one encoder and
    decoder layer fit the 128 px toy images (two-stage DINO picks queries among tokens)."""
    return ['model.backbone.arch=micro', 'model.backbone.img_size=128',
            'model.backbone.drop_path_rate=0.0', 'model.backbone.init_cfg=None',
            f'model.neck.in_channels={MICRO_DIMS}'.replace(' ', ''),
            'model.num_queries=100', 'model.encoder.num_layers=1',
            'model.decoder.num_layers=1', 'model.bbox_head.num_classes=4',
            'model.test_cfg.max_per_img=100', 'randomness.seed=0',
            'default_hooks.logger.interval=1']


def _data(split, root):
    loader = f'{split}_dataloader'
    return [f'{loader}.dataset.data_root={root}/',
            f'{loader}.dataset.metainfo.classes={CLASS_LIST}',
            f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']


# mmdet's DINO training resizes with a RandomChoice of two branches; both to 128 px
DINO_TRAIN_128 = [
    'train_dataloader.dataset.pipeline.3.transforms.0.0.scales=[(128,128)]',
    'train_dataloader.dataset.pipeline.3.transforms.1.0.scales=[(128,128)]',
    'train_dataloader.dataset.pipeline.3.transforms.1.1.crop_size=(96,96)',
    'train_dataloader.dataset.pipeline.3.transforms.1.2.scales=[(128,128)]',
]
TRAIN_ONLY = ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=2',
              'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']


def test_card_usage_lines(tmp_path, coco128):
    env = tool_env(threads=1, PYTHON=sys.executable)

    # 1. tools/dist_train.sh configs/dino/dino-5scale_transnext_base.py 2
    work = tmp_path / 'dino'
    cmd = ['tools/dist_train.sh', CARD_CONFIG, '2', '--work-dir', work, '--cfg-options',
           *_shrink_dino(), *_data('train', coco128), *DINO_TRAIN_128, *TRAIN_ONLY]
    proc = run_on_a_free_port(cmd, env)
    assert 'Epoch(train) [1][1/1]' in proc.stdout  # 4 images, 2 processes x batch 2
    assert 'Distributed training: True' in proc.stdout
    assert 'GPU number: 2' in proc.stdout  # mmengine's name for the world size
    checkpoint = work / 'epoch_1.pth'
    assert checkpoint.is_file()

    # 2. a third-party config in a user's own folder, custom_imports=['mmtransnext']
    user_config = shutil.copy(ROOT / 'tests/data/third_party_mask_rcnn.py', tmp_path)
    proc = run([sys.executable, 'tools/train.py', user_config, '--work-dir',
                tmp_path / 'third_party', '--cfg-options',
                *_data('train', coco128), *TRAIN_ONLY, 'train_dataloader.dataset.indices=2',
                'train_dataloader.dataset.pipeline.2.scale=(128,128)',
                'model.backbone.img_size=128', 'model.roi_head.bbox_head.num_classes=4',
                'model.roi_head.mask_head.num_classes=4', 'default_hooks.logger.interval=1'],
               env=env)
    assert 'Epoch(train) [1][1/1]' in proc.stdout
    assert (tmp_path / 'third_party' / 'epoch_1.pth').is_file()

    # 3. python tools/test.py <config> <checkpoint> --aug-test (on the checkpoint of 1.)
    proc = run([sys.executable, 'tools/test.py', CARD_CONFIG, checkpoint, '--aug-test',
                '--work-dir', tmp_path / 'tta', '--cfg-options', *_shrink_dino(),
                *_data('test', coco128), 'test_dataloader.dataset.pipeline.1.scale=(128,128)',
                f'test_evaluator.ann_file={coco128}/annotations/instances_val2017.json'],
               env=env)
    assert "type='DetTTAModel'" in proc.stdout
    bbox_map = read_metrics(tmp_path / 'tta')['coco/bbox_mAP']
    assert 0.0 <= bbox_map <= 1.0
