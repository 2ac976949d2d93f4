"""Classification logits against the reference: timm model and mmpretrain ImageClassifier."""
import pytest
import torch

from golden_testing import TOL, golden_arch
from mmtransnext.checkpoint.conversion import imagenet_to_mmpretrain


def _mode(case):
    return 'linear' if case['fixed_pool_size'] else 'extrapolate'


def _check(logits, case):
    err = (logits - case['logits'].float()).abs().max().item()
    assert err <= TOL, f'{case["img_size"]} {_mode(case)}: {err:.2e}'


@pytest.mark.parametrize('index', range(2))
def test_timm_model_matches_reference(golden_cls, index):
    import timm
    case = golden_cls['cases'][index]
    model = timm.create_model('transnext_micro', num_classes=1000, pos_bias=_mode(case),
                              arch=golden_arch(golden_cls['arch']), img_size=case['img_size'],
                              fixed_pool_size=case['fixed_pool_size'] or 7)
    model.load_state_dict(golden_cls['state_dict'], strict=True)
    with torch.no_grad():
        _check(model.eval()(case['input']), case)


@pytest.mark.parametrize('index', range(2))
def test_mmpretrain_classifier_matches_reference(golden_cls, index):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    case = golden_cls['cases'][index]
    cfg = Config(dict(
        custom_imports=dict(imports=['mmtransnext'], allow_failed_imports=False),
        model=dict(
            type='ImageClassifier',
            backbone=dict(type='TransNeXt', arch=golden_arch(golden_cls['arch']),
                          img_size=case['img_size'], pos_bias=_mode(case),
                          fixed_pool_size=case['fixed_pool_size'] or 7, out_indices=(3,)),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000, in_channels=384))))
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # whatever ran before
        model = MODELS.build(cfg.model)
    model.load_state_dict(imagenet_to_mmpretrain(golden_cls['state_dict']), strict=True)
    with torch.no_grad():
        _check(model.eval()(case['input'], mode='tensor'), case)
