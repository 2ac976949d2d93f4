"""--cfg-options keys are checked against the config before anything runs: a typo names
the key it probably meant, a new key is accepted where the constructor has a default, a
list index out of range is an error."""
import pytest
from mmengine.config import Config

from mmtransnext.cli.cfg_options import UnknownCfgOptionError, check_cfg_options
from tools_testing import CONFIGS, load_tool

UPERNET = CONFIGS / 'upernet/upernet_transnext_tiny.py'


@pytest.fixture(scope='module')
def tools():
    return dict(train=load_tool('train'), test=load_tool('test'))


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
    cfg = Config.fromfile(str(UPERNET))
    check_cfg_options(cfg, {'model.backbone.check_finite': True,  # constructor default
                            'train_cfg.max_iters': 10})
    with pytest.raises(UnknownCfgOptionError, match=r'train_dataloader\.dataset\.pipeline '
                                                    r'is a list of \d+ items; .99.'):
        check_cfg_options(cfg, {'train_dataloader.dataset.pipeline.99.scale': 1})
