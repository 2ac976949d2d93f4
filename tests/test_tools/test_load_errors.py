"""Issue 11: checkpoints load strictly or not at all, and bad input gets a clear message
before work is done. tools/train.py and tools/test.py run in-process (their ``main``);
one subprocess runs the converter in a fresh interpreter.

Probes: a checkpoint missing block3, of another arch, the authors' unconverted one,
--partial-load, --resume with a weights-only file, junk bytes, a truncated file, a
directory, a malicious pickle, mmengine training checkpoints read by every reader,
transnext2mm keeping ``meta``, a dataset folder without images, --cfg-options typos."""
import pickle
import re
import sys

import pytest
import torch
import torch.nn as nn

from mmtransnext.cli.cfg_options import UnknownCfgOptionError, check_cfg_options
from mmtransnext.cli.preflight import EmptyDatasetError
from mmtransnext.checkpoint.strict_load_hook import StrictLoadHook
from mmtransnext.models import TransNeXt
from mmtransnext.checkpoint.state_dict import CheckpointMismatchError
from mmtransnext.checkpoint.conversion import mmpretrain_to_imagenet
from mmtransnext.checkpoint.safe_load import (NotACheckpointError, UnsafeCheckpointError,
                                          load_checkpoint_file)
from mmtransnext.checkpoint.safe_load import torch_load_allowed
from tools_testing import CONFIGS, ROOT, cls_config, load_tool, run
from tools_testing import cls_run, imagenet64, toy_root  # noqa: F401 (fixtures)

UPERNET = CONFIGS / 'upernet/upernet_transnext_tiny.py'
SMALL = dict(embed_dims=[16, 32], num_heads=[1, 2], depths=[1, 2], mlp_ratios=[2, 2],
             sr_ratios=[2, 1], window_size=[3, None])


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


# ------------------------------------------------------------- the hook on its own
class Classifier(nn.Module):
    """ImageClassifier's key layout: backbone.*, head.fc.*."""

    def __init__(self, arch=SMALL, num_classes=4):
        super().__init__()
        self.backbone = TransNeXt(arch=arch, img_size=32, out_indices=(0, 1))
        self.head = nn.Module()
        self.head.fc = nn.Linear(arch['embed_dims'][-1], num_classes)


class Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = TransNeXt(arch=SMALL, img_size=32, out_indices=(0, 1))
        self.neck = nn.Conv2d(32, 8, 1)


class FakeRunner:
    def __init__(self, model, resume=False):
        self.model, self._resume, self._load_from = model, resume, 'x.pth'


def test_checkpoint_of_another_arch():
    other = dict(SMALL, embed_dims=[24, 48], num_heads=[1, 2])
    checkpoint = {'state_dict': Classifier(other).state_dict()}
    with pytest.raises(CheckpointMismatchError,
                       match=r'checkpoint x.pth does not match Classifier: \d+ shape '
                             r'mismatches \(checkpoint vs model\): backbone\.'):
        StrictLoadHook().after_load_checkpoint(FakeRunner(Classifier()), checkpoint)


def test_official_checkpoint_into_a_detector_is_backbone_only():
    official = mmpretrain_to_imagenet(Classifier().state_dict())
    assert 'head.weight' in official
    with pytest.raises(CheckpointMismatchError, match=r'2 model weights missing .*: '
                                                      r'neck\.bias, neck\.weight'):
        StrictLoadHook().after_load_checkpoint(FakeRunner(Detector()), dict(official))
    checkpoint = dict(official)
    StrictLoadHook(allow_partial=True).after_load_checkpoint(FakeRunner(Detector()),
                                                             checkpoint)
    assert list(checkpoint) == ['state_dict']
    loaded = checkpoint['state_dict']
    assert all(k.startswith('backbone.') for k in loaded)
    assert len(loaded) == len(Detector().backbone.state_dict())


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


class Payload:
    def __reduce__(self):
        return (print, ('unsafe',))


def test_malicious_pickle_refused_without_weights_only_advice(tmp_path):
    path = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'extra': Payload()}, path)
    with pytest.raises(UnsafeCheckpointError) as e:
        load_checkpoint_file(path)
    assert isinstance(e.value, pickle.UnpicklingError)
    # torch >= 2.4 names it as pickled (print), the allow-list unpickler of older torch by
    # its Python 3 module (builtins.print)
    assert re.search(r'pickles the global (builtins\.)?print, which is neither a tensor',
                     str(e.value))
    assert 'weights_only' not in str(e.value)


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


def test_dataset_check_accepts_images_in_subfolders(cls_setup, imagenet64):
    from mmtransnext.cli.preflight import check_dataset_folders
    from mmtransnext.cli.config_loading import load_config
    cfg = load_config(str(cls_setup['config']))
    check_dataset_folders(cfg, ['train_dataloader', 'val_dataloader'])  # no error


def test_cfg_options_typo_is_an_error_before_anything_runs(tools):
    args = tools['train'].parse_args([str(UPERNET), '--cfg-options',
                                      'optim_wraper.optimizer.lr=0.5'])
    with pytest.raises(UnknownCfgOptionError,
                       match=r"the config has no key 'optim_wraper'; did you mean "
                             r"'optim_wrapper\.optimizer\.lr'\?"):
        tools['train'].build_cfg(args)
    args = tools['test'].parse_args([str(UPERNET), 'c.pth', '--cfg-options',
                                     'model.backbone.drop_path_rat=0.1'])
    with pytest.raises(UnknownCfgOptionError, match="did you mean "
                                                    "'model.backbone.drop_path_rate'"):
        tools['test'].build_cfg(args)


def test_cfg_options_new_key_and_list_index():
    from mmengine.config import Config
    cfg = Config.fromfile(str(UPERNET))
    check_cfg_options(cfg, {'model.backbone.check_finite': True,  # constructor default
                            'train_cfg.max_iters': 10})
    with pytest.raises(UnknownCfgOptionError, match=r'train_dataloader\.dataset\.pipeline '
                                                    r'is a list of \d+ items; .99.'):
        check_cfg_options(cfg, {'train_dataloader.dataset.pipeline.99.scale': 1})
