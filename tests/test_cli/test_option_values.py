"""Option values are checked before anything is built: a --cfg-options value of the wrong
type, a non-positive lr / batch size / training length (config or --cfg-options) and an
unwritable tools/test.py --out are errors naming the key or the path."""
import pytest
from mmengine.config import Config

from mmtransnext.cli.cfg_options import CfgOptionTypeError, check_cfg_options
from mmtransnext.cli.config_values import ConfigValueError, check_config_values
from mmtransnext.cli.preflight import UnwritablePathError, check_writable
from tools_testing import CONFIGS, load_tool

UPERNET = str(CONFIGS / 'upernet/upernet_transnext_tiny.py')


@pytest.fixture(scope='module')
def tools():
    return dict(train=load_tool('train'), test=load_tool('test'))


@pytest.fixture(autouse=True)
def local_rank(monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')  # parse_args sets it; keep the session clean


def _train_cfg(tools, tmp_path, *options):
    train = tools['train']
    return train.build_cfg(train.parse_args([UPERNET, '--work-dir', str(tmp_path),
                                             '--cfg-options', *options]))


@pytest.mark.parametrize('option,message', [
    ('train_cfg.max_iters=abc', r"train_cfg.max_iters='abc': the config holds 160000 \(int\)"),
    ('optim_wrapper.optimizer.betas=0.9', r'optim_wrapper.optimizer.betas=0.9: .*\(tuple\)'),
    ('model.backbone=tiny', r"model.backbone='tiny': the config holds a ConfigDict"),
])
def test_cfg_option_of_another_type(tools, tmp_path, option, message):
    with pytest.raises(CfgOptionTypeError, match=message):
        _train_cfg(tools, tmp_path, option)


def test_cfg_option_types_that_fit():
    cfg = Config(dict(a=dict(lr=0.1, n=3, name='x', flag=True, init=None, crop=(4, 4))))
    check_cfg_options(cfg, {'a.lr': 1, 'a.n': 2.0, 'a.name': 5, 'a.flag': False,
                            'a.init': dict(type='Pretrained'), 'a.crop': [8, 8]})
    check_cfg_options(cfg, {'a.lr': None, 'a.crop': None})  # None switches a setting off
    with pytest.raises(CfgOptionTypeError, match=r"a.flag=1: .*True \(bool\)"):
        check_cfg_options(cfg, {'a.flag': 1})


@pytest.mark.parametrize('option,message', [
    ('optim_wrapper.optimizer.lr=-1', 'optim_wrapper.optimizer.lr=-1: the learning rate '
                                      'must be a number > 0'),
    ('optim_wrapper.optimizer.lr=0', 'optim_wrapper.optimizer.lr=0: '),
    ('train_dataloader.batch_size=0', r'train_dataloader.batch_size=0: must be an integer '
                                      r'> 0 \(samples per batch\)'),
    ('train_cfg.max_iters=0', r'train_cfg.max_iters=0: must be an integer > 0'),
    ('train_cfg.max_iters=2.5', r'train_cfg.max_iters=2.5: must be an integer > 0'),
    ('val_dataloader.batch_size=-2', r'val_dataloader.batch_size=-2: '),
])
def test_non_positive_values(tools, tmp_path, option, message):
    with pytest.raises(ConfigValueError, match=message + '.*nothing was run'):
        _train_cfg(tools, tmp_path, option)


def test_values_of_the_config_file_and_optimizer_dicts():
    cfg = Config(dict(optim_wrapper=dict(gen=dict(optimizer=dict(lr=1e-4)),
                                         disc=dict(optimizer=dict(lr=-1e-4))),
                      test_dataloader=dict(batch_size=0)))
    with pytest.raises(ConfigValueError, match='optim_wrapper.disc.optimizer.lr=-0.0001'):
        check_config_values(cfg, ['train_dataloader'])
    check_config_values(cfg, ['val_dataloader'])  # a test run reads no lr
    with pytest.raises(ConfigValueError, match='test_dataloader.batch_size=0'):
        check_config_values(cfg, ['test_dataloader'])


def test_unwritable_out_is_refused_before_the_run(tools, tmp_path):
    test = tools['test']
    a_file = tmp_path / 'a_file'
    a_file.write_text('')
    for out, folder in ((a_file / 'preds.pkl', False), (a_file / 'deeper' / 'pngs', True)):
        with pytest.raises(UnwritablePathError, match=f'--out {out}: {a_file} is a file, so '
                           'nothing can be written under it'):
            test.build_cfg(test.parse_args([UPERNET, 'c.pth', '--out', str(out)]))
    with pytest.raises(UnwritablePathError, match=f'{tmp_path} is a folder; give a file'):
        check_writable(str(tmp_path), '--out')
    check_writable(str(tmp_path / 'new' / 'preds.pkl'), '--out')  # parents are created
    cfg, _ = test.build_cfg(test.parse_args([UPERNET, 'c.pth', '--out',
                                             str(tmp_path / 'pngs')]))
    assert cfg.test_evaluator.output_dir == str(tmp_path / 'pngs')
