"""TransNeXt's constructor rejects bad arguments up front (ValueError naming the argument,
the value and the valid range), an empty batch is an error, and the opt-in non-finite
check names the stage and block where NaN / Inf first appear (issue 11)."""
import pytest
import torch

from mmtransnext.models import TransNeXt

# two stages (strides 4, 8), one pooled: builds and runs in milliseconds
SMALL = dict(embed_dims=[16, 32], num_heads=[1, 2], depths=[1, 2], mlp_ratios=[2, 2],
             sr_ratios=[2, 1], window_size=[3, None])


def small(**kwargs):
    return TransNeXt(arch=kwargs.pop('arch', SMALL), out_indices=(0, 1), **kwargs)


@pytest.mark.parametrize('name', ['drop_path_rate', 'drop_rate', 'attn_drop_rate'])
@pytest.mark.parametrize('value', [-0.5, 1.0, 1.5])
def test_rates_outside_0_1(name, value):
    with pytest.raises(ValueError, match=rf'{name} must be a number in \[0, 1\), got '
                                         rf'{value}'):
        small(**{name: value})


@pytest.mark.parametrize('img_size', [0, 16, -64, (64, 16)])
def test_img_size_too_small(img_size):
    with pytest.raises(ValueError, match=r'img_size must be >= 32 \(the smallest image'):
        TransNeXt(arch='micro', img_size=img_size)


def test_img_size_minimum_follows_the_arch():
    small(img_size=8)  # stride 4 x sr 2, stride 8 x sr 1
    with pytest.raises(ValueError, match='img_size must be >= 64'):
        TransNeXt(arch='micro-aaaa', img_size=32)  # stride 4 x sr_ratio 16
    with pytest.raises(ValueError, match=r'img_size must be an integer >= 32 .* got 64\.0'):
        TransNeXt(arch='micro', img_size=64.0)


def test_pretrain_size_too_small():
    with pytest.raises(ValueError, match=r'pretrain_size must be >= 64 \(two tokens per '
                                         r'side at the last stage\), got 32'):
        TransNeXt(arch='micro', pretrain_size=32)


def test_fixed_pool_size_zero():
    with pytest.raises(ValueError, match=r"fixed_pool_size must be >= 1 \(pooled grid side "
                                         r"in 'linear' mode\), got 0"):
        small(fixed_pool_size=0)


@pytest.mark.parametrize('window', [3.0, 4, 0, -3, True, [3.0, None]])
def test_window_size_not_an_odd_int(window):
    arch = dict(SMALL, window_size=window)
    with pytest.raises(ValueError, match=r'arch window_size of stage 0: window size must be '
                                         r'a positive odd integer'):
        small(arch=arch)


def test_batch_of_zero_images():
    model = small(img_size=32).eval()
    with pytest.raises(ValueError, match=r'empty batch \(input shape \(0, 3, 32, 32\)\)'):
        model(torch.zeros(0, 3, 32, 32))


def test_check_finite_is_off_by_default():
    model = small(img_size=32).eval()
    x = torch.randn(1, 3, 32, 32)
    x[0, 0, 0, 0] = float('nan')
    with torch.no_grad():
        outs = model(x)
    assert not torch.isfinite(outs[-1]).all()  # no error: the NaN reaches the output


def test_check_finite_names_the_input():
    model = small(img_size=32, check_finite=True).eval()
    x = torch.randn(1, 3, 32, 32)
    x[0, 1, 5, 5] = float('inf')
    with pytest.raises(FloatingPointError, match=r'Inf values first appear in the input '
                                                 r'images \(1 of 3072 values\)'):
        model(x)


@pytest.mark.parametrize('entry', ['forward_features', 'forward_intermediates', 'forward'])
def test_check_finite_covers_every_classifier_entry(entry):
    """The classifiers (mmpretrain and timm) enter through their own forwards: the input
    check runs there too."""
    from mmtransnext.models.classifiers.timm_transnext import TimmTransNeXt
    model = TimmTransNeXt(arch='micro', img_size=32, num_classes=3).eval()
    model.check_finite = True
    x = torch.randn(1, 3, 32, 32)
    x[0, 2, 1, 1] = float('nan')
    with pytest.raises(FloatingPointError, match=r'NaN values first appear in the input images'):
        getattr(model, entry)(x)


def test_check_finite_names_stage_and_block():
    model = small(img_size=32, check_finite=True).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))  # finite: no error
        model.block2[1].mlp.fc1.weight[0, 0] = float('nan')
    with pytest.raises(FloatingPointError, match=r'NaN values first appear in stage 1, '
                                                 r'block2\.1'):
        with torch.no_grad():
            model(torch.randn(1, 3, 32, 32))
