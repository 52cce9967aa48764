"""EAN backbones: registries, plugin equivalence, shapes, freezing and parameter counts."""
import re

import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from torch.nn.modules.batchnorm import _BatchNorm

import ean_mm  # noqa: F401
from ean_mm.models import EAN, EANMobileNeXt, EANResNet, MobileNeXt
from ean_mm.paper import CLASSIFIERS, classifier_cfg

EAN_PLUGIN = [dict(cfg=dict(type='ean_mm.EAN', groups=64), position='after_conv3')]
REGISTRIES = pytest.mark.parametrize('registry', [MMDET_MODELS, MMPRETRAIN_MODELS],
                                     ids=['mmdet', 'mmpretrain'])


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def randomize_(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.1 + (1.0 if p.dim() == 1 else 0.0))


@REGISTRIES
@pytest.mark.parametrize('cfg,cls', [
    (dict(type='ean_mm.EANResNet', depth=50), EANResNet),
    (dict(type='ean_mm.MobileNeXt'), MobileNeXt),
    (dict(type='ean_mm.EANMobileNeXt'), EANMobileNeXt),
])
def test_builds_by_name(registry, cfg, cls):
    assert type(registry.build(cfg)) is cls


def test_plugin_resnet_equals_ean_resnet():
    # scope-qualified: another test may have left mmpretrain (whose ResNet has no plugins) as
    # the default scope
    plugin = MMDET_MODELS.build(dict(type='mmdet.ResNet', depth=50, plugins=EAN_PLUGIN))
    ean = MMDET_MODELS.build(dict(type='ean_mm.EANResNet', depth=50))
    assert list(plugin.state_dict()) == list(ean.state_dict())
    assert 'layer4.2.ean.alpha' in ean.state_dict()
    assert sum(isinstance(m, EAN) for m in ean.modules()) == 16
    randomize_(plugin)
    ean.load_state_dict(plugin.state_dict(), strict=True)
    plugin.eval(), ean.eval()
    x = torch.randn(2, 3, 64, 64)
    for a, b in zip(plugin(x), ean(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ean_sits_after_last_norm_before_residual_add():
    net = EANResNet(depth=50, out_indices=(0, ))
    randomize_(net)
    block = net.layer1[0].eval()
    x = torch.randn(1, 64, 8, 8)
    with torch.no_grad():  # the Bottleneck written out: relu(ean(bn3(conv3(...))) + downsample)
        out = torch.relu(block.bn1(block.conv1(x)))
        out = torch.relu(block.bn2(block.conv2(out)))
        want = torch.relu(block.ean(block.bn3(block.conv3(out))) + block.downsample(x))
        assert torch.equal(block(x), want)


@pytest.mark.parametrize('depth', [18, 50])
def test_residual_add_in_place_unless_hooks_hold_the_output(depth):
    net = EANResNet(depth=depth)
    randomize_(net)
    net.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        plain_run = net(x)
    # a hook holding EAN's output (GradCAM's activations) keeps it as EAN returned it, and the
    # network's outputs are the same bit for bit
    held = []
    handles = [m.register_forward_hook(lambda m, i, out: held.append((out, out.clone())))
               for m in net.modules() if isinstance(m, EAN)]
    with torch.no_grad():
        hooked_run = net(x)
    for h in handles:
        h.remove()
    assert len(held) == {18: 8, 50: 16}[depth]
    assert all(torch.equal(out, copy) for out, copy in held)
    assert all(torch.equal(a, b) for a, b in zip(plain_run, hooked_run))


def test_add_identity_writes_into_the_output_only_without_hooks():
    from ean_mm.models.layers import add_identity
    layer = EAN(64)
    out, identity = torch.randn(1, 64, 4, 4), torch.randn(1, 64, 4, 4)
    want = out + identity
    first = out.clone()
    assert add_identity(first, identity, layer) is first and torch.equal(first, want)
    handle = layer.register_forward_hook(lambda *args: None)
    second = out.clone()
    result = add_identity(second, identity, layer)
    handle.remove()
    assert result is not second and torch.equal(second, out) and torch.equal(result, want)


@pytest.mark.parametrize('depth,channels', [(18, (64, 128, 256, 512)),
                                            (34, (64, 128, 256, 512)),
                                            (50, (256, 512, 1024, 2048)),
                                            (101, (256, 512, 1024, 2048))])
def test_resnet_shapes_and_strides(depth, channels):
    net = EANResNet(depth=depth, out_indices=(0, 1, 2, 3)).eval()
    outs = net(torch.randn(1, 3, 64, 96))
    assert [o.shape[1] for o in outs] == list(channels)
    assert [(64 // o.shape[2], 96 // o.shape[3]) for o in outs] == [(s, s) for s in (4, 8, 16, 32)]


def test_resnet18_ean_in_basic_blocks_and_zero_init():
    net = EANResNet(depth=18, ean_groups=32)
    assert sum(isinstance(m, EAN) for m in net.modules()) == 8
    assert 'layer1.0.ean.gn.weight' in net.state_dict()
    net.init_weights()
    assert all(torch.count_nonzero(getattr(net, f'layer{i}')[j].bn2.weight) == 0
               for i in range(1, 5) for j in range(2))
    out = net.eval()(torch.randn(1, 3, 32, 32))
    assert out[-1].shape == (1, 512, 1, 1)


def test_resnet_groups_error_names_the_channels():
    with pytest.raises(ValueError, match=r'EANResNet: EAN groups=48 .* EAN layers \(256, 512, '
                       r'1024, 2048\); it does not divide 256, 512, 1024, 2048\. .*: 32 or 64'):
        EANResNet(depth=50, ean_groups=48)


@pytest.mark.parametrize('widen,channels', [(1.0, (96, 144, 192, 288, 384, 576, 960, 1280)),
                                            (0.5, (48, 72, 96, 144, 192, 288, 480, 1280))])
def test_mobilenext_shapes_and_strides(widen, channels):
    net = MobileNeXt(widen_factor=widen, out_indices=range(8)).eval()
    outs = net(torch.randn(1, 3, 64, 64))
    assert tuple(o.shape[1] for o in outs) == channels  # the last stage stays 1280 below 1.0x
    assert [64 // o.shape[2] for o in outs] == [4, 4, 8, 16, 16, 32, 32, 32]


def test_mobilenext_groups_error_names_the_channels():
    with pytest.raises(ValueError, match=r'EANMobileNeXt: EAN groups=64 .*\(96, 144, 192, 288, '
                       r'384, 576, 960, 1280\); it does not divide 96, 144, 288\. .*: 8 or 16'):
        EANMobileNeXt(ean_groups=64)
    with pytest.raises(ValueError, match=r'it does not divide 72\. .*: 4 or 8 \(any divisor of 8'):
        EANMobileNeXt(ean_groups=16, widen_factor=0.5)


def _ean_cfg(groups) -> dict:
    return dict(type='EAN', groups=groups)


#: Every backbone that builds EAN layers: ``groups -> cfg`` (mmdet registry).
GROUP_BACKBONES = {
    'EANResNet-50': lambda g: dict(type='ean_mm.EANResNet', depth=50, ean_groups=g),
    'EANResNet-18': lambda g: dict(type='ean_mm.EANResNet', depth=18, ean_groups=g),
    'EANMobileNeXt': lambda g: dict(type='ean_mm.EANMobileNeXt', ean_groups=g),
    'EANMobileNeXt-0.5x': lambda g: dict(type='ean_mm.EANMobileNeXt', ean_groups=g,
                                         widen_factor=0.5),
    'EANMobileNetV2': lambda g: dict(type='ean_mm.EANMobileNetV2', ean_groups=g),
    'AttentionMobileNetV2-depthwise': lambda g: dict(
        type='ean_mm.AttentionMobileNetV2', attention_cfg=_ean_cfg(g),
        attention_after='depthwise'),
    'MobileNeXt+attention_cfg': lambda g: dict(type='ean_mm.MobileNeXt',
                                               attention_cfg=_ean_cfg(g)),
    'AttentionResNet+attention_cfg': lambda g: dict(type='ean_mm.AttentionResNet', depth=50,
                                                    attention_cfg=_ean_cfg(g)),
    'AttentionResNet+plugins': lambda g: dict(
        type='ean_mm.AttentionResNet', depth=50,
        plugins=[dict(cfg=dict(type='ean_mm.EAN', groups=g), position='after_conv3')]),
    'AttentionResNet+plugins-after_conv2': lambda g: dict(
        type='ean_mm.AttentionResNet', depth=50,
        plugins=[dict(cfg=dict(type='ean_mm.EAN', groups=g), position='after_conv2',
                      stages=(False, True, True, True))]),
    'mmdet.ResNet+plugins': lambda g: dict(
        type='mmdet.ResNet', depth=50,
        plugins=[dict(cfg=dict(type='ean_mm.EAN', groups=g), position='after_conv3')]),
}


@pytest.mark.parametrize('name', list(GROUP_BACKBONES))
@pytest.mark.parametrize('groups', [7, 48, 0])
def test_groups_hint_fits_every_ean_layer(name, groups):
    cfg = GROUP_BACKBONES[name]
    with pytest.raises(ValueError, match=rf'groups={groups} must be') as err:
        MMDET_MODELS.build(cfg(groups))
    message = str(err.value)
    hint = re.search(r'(?:divisor of \d+|divides them all): (\d+)(?: or (\d+))?', message)
    assert hint, message
    suggested = [int(v) for v in hint.groups() if v]
    assert suggested and groups not in suggested
    for value in suggested:  # was: a value that fails at a later block, whose hint fails again
        net = MMDET_MODELS.build(cfg(value))
        assert {m.groups for m in net.modules() if isinstance(m, EAN)} == {value}, message


@pytest.mark.parametrize('cfg', [dict(type='ean_mm.EANResNet', depth=50),
                                 dict(type='ean_mm.EANMobileNeXt')])
def test_frozen_stages_and_norm_eval(cfg):
    net = MMDET_MODELS.build(dict(cfg, frozen_stages=2, norm_eval=True))
    net.train()
    stem = [net.conv1] if isinstance(net, MobileNeXt) else [net.conv1, net.norm1]
    for module in stem + [net.layer1, net.layer2]:
        assert all(not p.requires_grad for p in module.parameters())
    for module in [net.layer1, net.layer2]:  # frozen stages run in eval mode, EAN included
        assert all(not m.training for m in module.modules())
    assert all(p.requires_grad for p in net.layer3.parameters())
    assert all(not m.training for m in net.modules() if isinstance(m, _BatchNorm))
    assert all(m.training for m in net.layer3.modules() if isinstance(m, EAN))

    trainable = MMDET_MODELS.build(dict(cfg, frozen_stages=-1, norm_eval=False)).train()
    assert all(p.requires_grad for p in trainable.parameters())
    assert all(m.training for m in trainable.modules())


@pytest.mark.parametrize('cfg', [dict(type='ean_mm.EANResNet', depth=50, with_cp=True),
                                 dict(type='ean_mm.EANMobileNeXt', with_cp=True)])
def test_with_cp_matches_plain(cfg, monkeypatch):
    calls = []
    real = torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, 'checkpoint',
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    net_cp = MMDET_MODELS.build(cfg).train()
    net = MMDET_MODELS.build(dict(cfg, with_cp=False)).train()
    net.load_state_dict(net_cp.state_dict())
    grads = []
    for model in (net_cp, net):
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0),
                        requires_grad=True)
        out = model(x)[-1]
        out.pow(2).sum().backward()
        grads.append([out, x.grad] + [p.grad for p in model.parameters()])
    n_blocks = sum(1 for m in net_cp.modules()
                   if m is not net_cp and getattr(m, 'with_cp', False))
    assert len(calls) == n_blocks > 0  # every block was checkpointed, once
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want)


def classifier(name: str) -> torch.nn.Module:
    return MMPRETRAIN_MODELS.build(classifier_cfg(name))


def ean_extra_params(channels_per_block, groups):
    return sum(4 * c // groups for c in channels_per_block)  # gamma, beta, alpha, delta: C/G each


def test_parameter_counts_against_paper():
    resnet_blocks = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
    r50, ean_r50 = n_params(classifier('r50')), n_params(classifier('ean-r50'))
    assert r50 == 25_557_032
    assert ean_r50 == r50 + ean_extra_params(resnet_blocks, 64) == 25_557_976
    for name, n in (('r50', r50), ('ean-r50', ean_r50)):  # Table 3: 25.56M both
        assert round(n / 1e6, 2) == CLASSIFIERS[name].paper.params_m

    mx, ean_mx = n_params(classifier('mx')), n_params(classifier('ean-mx'))
    mx_blocks = [96, 144] + [192] * 3 + [288] * 3 + [384] * 4 + [576] * 4 + [960] * 3 + [1280]
    assert mx == 3_535_416
    assert ean_mx == mx + ean_extra_params(mx_blocks, 8) == 3_540_256
    for name, n in (('mx', mx), ('ean-mx', ean_mx)):  # Table 3: 3.54M both
        assert round(n / 1e6, 2) == CLASSIFIERS[name].paper.params_m
