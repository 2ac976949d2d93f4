"""custom_imports=['mmtransnext'] makes type='TransNeXt' buildable in mmdet, mmseg and
mmpretrain configs. Each case runs in a fresh interpreter, so nothing was imported before
the config asked for it."""
import subprocess
import sys
import textwrap

import pytest

BUILD = textwrap.dedent('''
    import sys
    from mmengine.config import Config
    assert 'mmtransnext' not in sys.modules
    cfg = Config.fromfile(sys.argv[1])
    assert 'mmtransnext' in sys.modules, 'custom_imports did not import mmtransnext'
    from {scope}.registry import MODELS
    from {scope}.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(cfg.model)
    backbone = model.backbone if hasattr(model, 'backbone') else model
    print(type(backbone).__module__ + '.' + type(backbone).__name__)
''')

CONFIG = textwrap.dedent('''
    custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)
    default_scope = '{scope}'
    model = dict(type='{wrapper}', {extra}
                 backbone=dict(type='TransNeXt', arch='micro', out_indices=(3,)))
''')



@pytest.mark.parametrize('scope,wrapper,extra', [
    ('mmdet', 'TransNeXt', None),
    ('mmseg', 'EncoderDecoder',
     "decode_head=dict(type='FCNHead', in_channels=384, channels=8, num_classes=3, "
     "num_convs=1, in_index=0),"),
    ('mmpretrain', 'ImageClassifier',
     "neck=dict(type='GlobalAveragePooling'), head=dict(type='LinearClsHead', "
     "num_classes=5, in_channels=384),"),
])
def test_build_through_custom_imports(tmp_path, scope, wrapper, extra):
    if wrapper == 'TransNeXt':  # a bare backbone from the mmdet registry
        cfg = ("custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)\n"
               "default_scope = 'mmdet'\n"
               "model = dict(type='TransNeXt', arch='micro')\n")
    else:
        cfg = CONFIG.format(scope=scope, wrapper=wrapper, extra=extra)
    path = tmp_path / f'{scope}_cfg.py'
    path.write_text(cfg)
    res = subprocess.run([sys.executable, '-c', BUILD.format(scope=scope), str(path)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith('mmtransnext.models.backbones.transnext.TransNeXt')


def test_timm_create_model():
    """Every variant is built through timm in test_parameter_counts_match_paper."""
    import timm
    import torch
    import mmtransnext  # noqa: F401
    assert timm.create_model('transnext_micro_aaaa', num_classes=7).arch_settings[
        'sr_ratios'] == [16, 8, 4, 2]
    with torch.no_grad():
        assert timm.create_model('transnext_micro', num_classes=7)(
            torch.randn(1, 3, 64, 64)).shape == (1, 7)
    with pytest.raises(ValueError, match='checkpoint_path'):
        timm.create_model('transnext_micro', pretrained=True)
