"""Issue 11: checkpoints load strictly or not at all, and bad input gets a clear message
before work is done. tools/train.py and tools/test.py run in-process (their ``main``);
one subprocess runs the converter in a fresh interpreter.

Probes: a checkpoint missing block3, the authors' unconverted one, --partial-load,
--resume with a weights-only file, junk bytes, a truncated file, a directory, mmengine
training checkpoints read by every reader, transnext2mm keeping ``meta``, a dataset folder
without images. The parts on their own (another arch, a malicious pickle, --cfg-options
typos): tests/test_checkpoint/test_strict_load_hook.py, tests/test_cli/test_cfg_options.py."""
import pickle
import sys

import pytest
import torch

from mmtransnext.checkpoint.conversion import mmpretrain_to_imagenet
from mmtransnext.checkpoint.safe_load import (NotACheckpointError, load_checkpoint_file,
                                              torch_load_allowed)
from mmtransnext.checkpoint.state_dict import CheckpointMismatchError
from mmtransnext.cli.preflight import EmptyDatasetError
from mmtransnext.models import TransNeXt
from tools_testing import CONFIGS, ROOT, cls_config, load_tool, run

UPERNET = CONFIGS / 'upernet/upernet_transnext_tiny.py'


@pytest.fixture(scope='module')
def tools():
    return dict(train=load_tool('train'), test=load_tool('test'))


@pytest.fixture
def local_rank(monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')  # parse_args sets it; keep the session clean


@pytest.fixture(scope='module')
def cls_setup(tmp_path_factory, imagenet64):
    """The micro classifier config at 64 px and a checkpoint of its (random) weights."""
    from mmtransnext.cli.config_loading import build_model, load_config
    tmp = tmp_path_factory.mktemp('load11')
    cfg = cls_config(tmp, imagenet64, deterministic=True)
    state_dict = build_model(load_config(str(cfg))).state_dict()
    good = tmp / 'good.pth'
    torch.save({'state_dict': state_dict, 'meta': {'note': 'weights only'}}, good)
    return dict(config=cfg, tmp=tmp, checkpoint=good, state_dict=state_dict)


def _save(path, state_dict):
    torch.save({'state_dict': state_dict}, path)
    return path


# ------------------------------------------------------------- strict loading (tools)
def test_test_py_refuses_checkpoint_missing_block3(tools, cls_setup, tmp_path, local_rank):
    sd = {k: v for k, v in cls_setup['state_dict'].items()
          if not k.startswith('backbone.block3.')}
    ckpt = _save(tmp_path / 'no_block3.pth', sd)
    with pytest.raises(CheckpointMismatchError) as e:
        tools['test'].main([str(cls_setup['config']), str(ckpt), '--work-dir', str(tmp_path)])
    msg = str(e.value)
    assert 'model weights missing (they would stay randomly initialised)' in msg
    assert 'backbone.block3.0.attn.cpb_fc1.bias' in msg
    assert 'transnext2mm.py' in msg and '--partial-load' in msg


def test_test_py_partial_load_says_what_stays_random(tools, cls_setup, tmp_path, capfd,
                                                     local_rank):
    sd = {k: v for k, v in cls_setup['state_dict'].items()
          if not k.startswith('backbone.block3.')}
    ckpt = _save(tmp_path / 'no_block3.pth', sd)
    metrics = tools['test'].main([str(cls_setup['config']), str(ckpt), '--work-dir',
                                  str(tmp_path), '--partial-load'])
    assert 0 <= metrics['accuracy/top1'] <= 100
    out = capfd.readouterr().out
    n_block3 = len(cls_setup['state_dict']) - len(sd)
    assert f'--partial-load: loaded {len(sd)} of {len(cls_setup["state_dict"])} weights' in out
    assert f'{n_block3} stay randomly initialised: backbone.block3.' in out


def test_unconverted_official_checkpoint_converted_on_the_fly(tools, cls_setup, tmp_path,
                                                              capfd, local_rank):
    official = tmp_path / 'official.pth'
    torch.save(mmpretrain_to_imagenet(cls_setup['state_dict']), official)  # plain dict
    assert 'patch_embed1.proj.weight' in torch.load(official)
    args = ['--work-dir', str(tmp_path)]
    converted = tools['test'].main([str(cls_setup['config']), str(official), *args])
    assert "in the authors' ImageNet layout; converted on the fly to backbone.* and " \
        'head.fc.*' in capfd.readouterr().out
    reference = tools['test'].main([str(cls_setup['config']), str(cls_setup['checkpoint']),
                                    *args])
    assert converted == reference


def test_train_py_resume_with_weights_only_file(tools, cls_setup, tmp_path, local_rank):
    with pytest.raises(ValueError, match=r'--resume needs a checkpoint written during '
                                         r'training .* holds weights only .*drop --resume '
                                         r'and pass --cfg-options load_from='):
        tools['train'].main([str(cls_setup['config']), '--work-dir', str(tmp_path),
                             '--resume', str(cls_setup['checkpoint'])])


# ------------------------------------------------------------- files that are no checkpoint
def test_junk_bytes(tools, cls_setup, tmp_path, local_rank):
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'this is not a checkpoint at all' * 10)
    with pytest.raises(NotACheckpointError) as e:
        tools['test'].main([str(cls_setup['config']), str(junk)])
    assert 'is not a PyTorch checkpoint (310 bytes' in str(e.value)
    assert 'weights_only' not in str(e.value)


def test_truncated_checkpoint(cls_setup, tmp_path):
    data = cls_setup['checkpoint'].read_bytes()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[:len(data) // 2])
    from mmengine.runner.checkpoint import _load_checkpoint  # what the Runner uses
    with pytest.raises(NotACheckpointError, match='truncated download or save'):
        _load_checkpoint(str(cut))


def test_directory_as_checkpoint(tools, cls_setup, local_rank):
    with pytest.raises(IsADirectoryError, match=r'is a directory, not a checkpoint file; '
                                                r'pass a file inside it \(e\.g\. .*good\.pth'):
        tools['test'].main([str(cls_setup['config']), str(cls_setup['tmp'])])


# ------------------------------------------------------------- mmengine training checkpoints
@pytest.fixture
def fresh_process_loading():
    """torch's allow-list and mmengine's local loader as before mmtransnext is imported."""
    from mmengine.runner.checkpoint import CheckpointLoader, load_from_local
    saved = torch.serialization.get_safe_globals()
    saved_loader = CheckpointLoader._schemes['']
    torch.serialization.clear_safe_globals()
    CheckpointLoader._schemes[''] = load_from_local
    yield
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(saved)
    CheckpointLoader._schemes[''] = saved_loader


@pytest.mark.needs('torch', (2, 6), "torch.load's weights_only default")
def test_training_checkpoint_read_by_every_reader(cls_run, fresh_process_loading):
    from mmengine.runner import load_checkpoint
    from mmtransnext.registry import register_all_modules
    from mmtransnext.cli.config_loading import build_model, load_config
    ckpt = str(cls_run['checkpoint'])  # written by mmengine: message hub, optimizer
    model = build_model(load_config(str(cls_run['config'])))
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        load_checkpoint(model, ckpt, map_location='cpu')
    register_all_modules()  # what `import mmtransnext` runs
    load_checkpoint(model, ckpt, map_location='cpu', strict=True)  # plain mmengine call
    backbone = TransNeXt(arch='micro', img_size=64, init_cfg=dict(
        type='Pretrained', checkpoint=ckpt, prefix='backbone'))
    backbone.init_weights()
    assert torch.equal(backbone.block3[0].mlp.fc1.weight,
                       model.backbone.block3[0].mlp.fc1.weight)


def test_transnext2mm_on_a_training_checkpoint_keeps_meta(cls_run, tmp_path):
    src, dst = cls_run['checkpoint'], tmp_path / 'converted.pth'
    proc = run([sys.executable, ROOT / 'tools/model_converters/transnext2mm.py', src, dst])
    assert 'TransNeXt-micro, downstream layout' in proc.stdout
    original = load_checkpoint_file(src)
    converted = torch_load_allowed(dst)
    assert sorted(converted) == ['meta', 'state_dict']  # no optimizer / message hub
    meta = converted['meta']
    assert meta['arch'] == 'micro' and meta['layout'] == 'downstream'
    assert {k: meta[k] for k in original['meta']} == original['meta']
    assert meta['dataset_meta'] == original['meta']['dataset_meta']


# ------------------------------------------------------------- datasets and cfg-options
def test_dataset_folder_without_images(tools, tmp_path, local_rank):
    for sub in ('images/validation', 'annotations/validation', 'images/training',
                'annotations/training'):
        (tmp_path / 'ade' / sub).mkdir(parents=True)
    ckpt = tmp_path / 'any.pth'
    torch.save({}, ckpt)
    with pytest.raises(EmptyDatasetError) as e:
        tools['test'].main([str(UPERNET), str(ckpt), '--cfg-options',
                            f'test_dataloader.dataset.data_root={tmp_path / "ade"}'])
    folder = tmp_path / 'ade' / 'images/validation'
    assert f'test_dataloader: the ADE20KDataset image folder {folder} (data_root + ' \
        'data_prefix) holds no image file; expected the images there (.jpg' in str(e.value)
