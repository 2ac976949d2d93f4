"""mmtransnext.analysis.authors against a fake checkout made in tmp_path: the file is run
from its path with stand-ins for the mmseg 0.x / mmcv 1.x names it imports, and left no
trace in sys.modules."""
import sys
import types

import pytest

from mmtransnext.analysis import authors
from mmtransnext.analysis.cases import parse_case

FAKE = '''
import torch.nn as nn
from mmseg.models.builder import BACKBONES
from mmseg.utils import get_root_logger
from mmcv.runner import load_checkpoint


class DropPath(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.drop_prob = p


@BACKBONES.register_module()
class transnext_tiny(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs
        self.drop = DropPath(0.4)
        self.logger = get_root_logger()
'''


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / authors.BACKBONE_FILE
    path.parent.mkdir(parents=True)
    path.write_text(FAKE)
    return tmp_path


def test_builds_their_tiny_with_the_mapped_arguments(repo):
    model = authors.build(repo, parse_case('forward:1024:interpolate:512'))
    assert model.kwargs == dict(pretrained=None, img_size=512, pretrain_size=224,
                                is_extrapolation=False)
    assert model.drop.drop_prob == 0.  # drop path off, as ours
    extrapolate = authors.build(repo, parse_case('train:512:extrapolate'))
    assert extrapolate.kwargs['is_extrapolation'] is True
    assert 'is_extrapolation=True' in authors.mapping(parse_case('train:512:extrapolate'))


def test_stand_ins_leave_sys_modules_as_they_were(repo, monkeypatch):
    real = types.ModuleType('mmseg.utils')
    monkeypatch.setitem(sys.modules, 'mmseg.utils', real)
    monkeypatch.delitem(sys.modules, 'mmcv.runner', raising=False)
    authors.load_module(repo)
    assert sys.modules['mmseg.utils'] is real
    assert 'mmcv.runner' not in sys.modules and 'authors_transnext' not in sys.modules


def test_describe_and_missing_checkout(repo, tmp_path):
    info = authors.describe(repo, 'c8a9974')
    assert info['commit'] == 'c8a9974' and info['file'] == authors.BACKBONE_FILE
    assert len(info['sha256']) == 12
    assert authors.describe(repo)['commit'] == 'unknown'  # no .git, no --authors-commit
    with pytest.raises(FileNotFoundError, match='DaiShiResearch/TransNeXt'):
        authors.describe(tmp_path / 'elsewhere')


def test_cases_with_a_counterpart():
    assert authors.maps_case(parse_case('forward:512:extrapolate'))
    assert not authors.maps_case(parse_case('forward:512:linear'))
    assert not authors.maps_case(parse_case('ops-forward:512:-'))
