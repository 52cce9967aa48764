"""SE and Coordinate Attention, the EAN paper's comparison baselines: registries, plugin use,
hand-written references, parameter counts and the configs of their detectors."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.config import Config
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

import ean_mm  # noqa: F401
from ean_mm.models import MobileNeXt
from ean_mm.models.layers.coord_attention import CoordAttention
from ean_mm.models.layers.se import SE

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REGISTRIES = pytest.mark.parametrize('registry', [ROOT_MODELS, MMDET_MODELS, MMPRETRAIN_MODELS],
                                     ids=['mmengine', 'mmdet', 'mmpretrain'])
LAYERS = pytest.mark.parametrize('name,cls,abbr', [('SE', SE, 'se'),
                                                   ('CoordAttention', CoordAttention, 'ca')])

# ImageNet classifiers (mmpretrain ImageClassifier: GAP + LinearClsHead, 1000 classes).
R50_PARAMS = 25_557_032
SE_R50_PARAMS = 28_088_024  # standard SE-ResNet-50 (paper Table 3: 28.09M)
CA_R50_PARAMS = 27_474_864  # CA r=32, mip=max(8, C//32) (paper Table 3: 28.08M)
MX_PARAMS = 3_305_720
SE_MX_PARAMS = 4_154_693  # paper Table 3: 4.19M (on a 3.54M MobileNeXt)
CA_MX_PARAMS = 3_961_455  # paper Table 3: 4.39M


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def randomize_(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)


# ---------------------------------------------------------------- registries and plugin use
@REGISTRIES
@LAYERS
def test_builds_by_name(registry, name, cls, abbr):
    layer = registry.build(dict(type=name, in_channels=64))
    assert type(layer) is cls and cls._abbr_ == abbr
    assert registry.get(name) is cls


def test_names_do_not_shadow_other_layers():
    # mmdet and mmpretrain keep their own SELayer; ours is a different, root-level name.
    from mmdet.models.layers import SELayer as MMDetSELayer
    from mmpretrain.models.utils import SELayer as MMPretrainSELayer
    assert MMDET_MODELS.get('SE') is SE and MMPRETRAIN_MODELS.get('SE') is SE
    assert SE not in (MMDetSELayer, MMPretrainSELayer)
    for registry in (ROOT_MODELS, MMDET_MODELS, MMPRETRAIN_MODELS):
        assert registry.get('CoordAttention') is CoordAttention


@LAYERS
def test_resnet_plugin_after_conv3(name, cls, abbr):
    plain = MMDET_MODELS.build(dict(type='mmdet.ResNet', depth=50))
    model = MMDET_MODELS.build(dict(type='mmdet.ResNet', depth=50, plugins=[
        dict(cfg=dict(type=name), position='after_conv3')]))
    layers = {k: m for k, m in model.named_modules() if isinstance(m, cls)}
    assert len(layers) == 16 and f'layer1.0.{abbr}' in layers and f'layer4.2.{abbr}' in layers
    assert layers[f'layer1.0.{abbr}'].in_channels == 256
    assert layers[f'layer4.2.{abbr}'].in_channels == 2048
    model.eval()
    plain.eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outs, plain_outs = model(x), plain(x)
    assert [o.shape for o in outs] == [o.shape for o in plain_outs]


@LAYERS
def test_mobilenext_attention_cfg(name, cls, abbr):
    model = MobileNeXt(attention_cfg=dict(type=name))
    layers = {k: m for k, m in model.named_modules() if isinstance(m, cls)}
    assert len(layers) == 20 and f'layer1.0.{abbr}' in layers
    assert layers['layer8.0.' + abbr].in_channels == 1280
    model.eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outs = model(x)
        plain_outs = MobileNeXt().eval()(x)
    assert [o.shape for o in outs] == [o.shape for o in plain_outs]


@LAYERS
@pytest.mark.parametrize('shape', [(2, 64, 7, 5), (1, 48, 1, 9), (3, 16, 4, 4)])
def test_output_shape_equals_input(name, cls, abbr, shape):
    layer = cls(shape[1]).train()
    x = torch.randn(*shape)
    y = layer(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert all(p.grad is not None for p in layer.parameters())


@LAYERS
def test_rejects_wrong_channels(name, cls, abbr):
    with pytest.raises(ValueError, match='expects'):
        cls(32)(torch.randn(1, 16, 4, 4))


# ---------------------------------------------------------------- SE against a reference
def se_reference(x, w1, b1, w2, b2):
    """Hu et al. 2018, Eqns 2-4, channel by channel."""
    n, c, h, w = x.shape
    mid = w1.shape[0]
    out = torch.empty_like(x)
    for b in range(n):
        z = [x[b, i].sum() / (h * w) for i in range(c)]  # squeeze (Eqn 2)
        hidden = [max(sum(w1[j, i] * z[i] for i in range(c)) + b1[j], 0.) for j in range(mid)]
        for i in range(c):
            e = sum(w2[i, j] * hidden[j] for j in range(mid)) + b2[i]  # excitation (Eqn 3)
            out[b, i] = x[b, i] / (1 + torch.exp(-e))  # scale (Eqn 4)
    return out


@pytest.mark.parametrize('c,r', [(32, 16), (48, 4), (20, 16)])
def test_se_matches_reference(c, r):
    layer = SE(c, reduction=r).double()
    randomize_(layer)
    assert layer.mid_channels == c // r
    x = torch.randn(2, c, 5, 3, dtype=torch.float64) * 2 + 0.5
    ref = se_reference(x, layer.fc1.weight[:, :, 0, 0], layer.fc1.bias,
                       layer.fc2.weight[:, :, 0, 0], layer.fc2.bias)
    torch.testing.assert_close(layer(x), ref, rtol=1e-10, atol=1e-10)


def test_se_parameter_count_and_default_reduction():
    for c in (256, 512, 1024, 2048, 96):
        layer = SE(c)
        assert layer.mid_channels == c // 16
        assert n_params(layer) == 2 * c * (c // 16) + c // 16 + c
    assert SE(8).mid_channels == 1  # C // 16 == 0 -> at least min_channels


# ---------------------------------------------------------------- CA against a reference
def ca_reference(x, conv1_w, conv1_b, bn_mean, bn_var, bn_w, bn_b, wh, bh, ww, bw, eps):
    """Hou et al. 2021, Eqns 4-9, written position by position."""
    n, c, h, w = x.shape
    z_h = torch.stack([x[:, :, i, :].mean(dim=-1) for i in range(h)], dim=-1)  # (N, C, H) Eqn 4
    z_w = torch.stack([x[:, :, :, j].mean(dim=-1) for j in range(w)], dim=-1)  # (N, C, W) Eqn 5
    z = torch.cat([z_h, z_w], dim=-1)  # (N, C, H + W)
    f = torch.einsum('mc,ncl->nml', conv1_w, z) + conv1_b[None, :, None]  # F1
    if bn_mean is None:  # training-mode BN: statistics over N and the H + W positions
        bn_mean = f.mean(dim=(0, 2))
        bn_var = ((f - bn_mean[None, :, None]) ** 2).mean(dim=(0, 2))
    f = (f - bn_mean[None, :, None]) / torch.sqrt(bn_var[None, :, None] + eps)
    f = f * bn_w[None, :, None] + bn_b[None, :, None]
    f = f * torch.clamp(f + 3, 0, 6) / 6  # h_swish (Eqn 6)
    f_h, f_w = f[:, :, :h], f[:, :, h:]
    g_h = torch.sigmoid(torch.einsum('cm,nml->ncl', wh, f_h) + bh[None, :, None])  # Eqn 7
    g_w = torch.sigmoid(torch.einsum('cm,nml->ncl', ww, f_w) + bw[None, :, None])  # Eqn 8
    out = torch.empty_like(x)
    for i in range(h):
        for j in range(w):
            out[:, :, i, j] = x[:, :, i, j] * g_h[:, :, i] * g_w[:, :, j]  # Eqn 9
    return out


@pytest.mark.parametrize('c,r,m', [(64, 32, 8), (32, 4, 8), (24, 32, 8), (40, 8, 2)])
@pytest.mark.parametrize('train', [True, False], ids=['train', 'eval'])
def test_ca_matches_reference(c, r, m, train):
    layer = CoordAttention(c, reduction=r, min_channels=m).double()
    assert layer.mid_channels == max(m, c // r)
    randomize_(layer)
    with torch.no_grad():
        layer.bn1.running_mean.copy_(torch.randn(layer.mid_channels))
        layer.bn1.running_var.copy_(torch.rand(layer.mid_channels) + 0.5)
    layer.train(train)
    x = torch.randn(2, c, 6, 4, dtype=torch.float64) * 2 + 0.5
    bn = layer.bn1
    stats = (None, None) if train else (bn.running_mean, bn.running_var)
    ref = ca_reference(x, layer.conv1.weight[:, :, 0, 0], layer.conv1.bias, *stats, bn.weight,
                       bn.bias, layer.conv_h.weight[:, :, 0, 0], layer.conv_h.bias,
                       layer.conv_w.weight[:, :, 0, 0], layer.conv_w.bias, bn.eps)
    torch.testing.assert_close(layer(x), ref, rtol=1e-10, atol=1e-10)


def test_ca_is_direction_aware():
    # A feature that varies only along H gets a weight that varies only along H.
    layer = CoordAttention(16).eval()
    randomize_(layer)
    x = torch.ones(1, 16, 5, 7)
    with torch.no_grad():
        a_h, a_w = layer.attention(x * torch.arange(5.).view(1, 1, 5, 1))
    assert a_h.shape == (1, 16, 5, 1) and a_w.shape == (1, 16, 1, 7)
    torch.testing.assert_close(a_w, a_w[..., :1].expand_as(a_w))
    assert not torch.allclose(a_h, a_h[:, :, :1].expand_as(a_h))


def test_ca_parameter_count():
    for c in (256, 512, 1024, 2048, 96):
        mip = max(8, c // 32)
        assert n_params(CoordAttention(c)) == 3 * c * mip + 3 * mip + 2 * c  # 3 convs + BN


# ---------------------------------------------------------------- classifier parameter counts
def classifier(backbone: dict, channels: int):
    init_default_scope('mmpretrain')
    return MMPRETRAIN_MODELS.build(dict(
        type='ImageClassifier', backbone=backbone, neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=channels)))


@pytest.mark.parametrize('attention,expected', [
    (None, R50_PARAMS),
    (dict(type='SE', reduction=16), SE_R50_PARAMS),
    (dict(type='CoordAttention', reduction=32, min_channels=8), CA_R50_PARAMS),
], ids=['R50', 'SE-R50', 'CA-R50'])
def test_resnet50_classifier_parameter_counts(attention, expected):
    plugins = None if attention is None else [dict(cfg=attention, position='after_conv3')]
    model = classifier(dict(type='mmdet.ResNet', depth=50, out_indices=(3, ), plugins=plugins),
                       2048)
    assert n_params(model) == expected


@pytest.mark.parametrize('attention,expected', [
    (None, MX_PARAMS), (dict(type='SE'), SE_MX_PARAMS),
    (dict(type='CoordAttention'), CA_MX_PARAMS)], ids=['MX', 'SE-MX', 'CA-MX'])
def test_mobilenext_classifier_parameter_counts(attention, expected):
    model = classifier(dict(type='MobileNeXt', out_indices=(7, ), attention_cfg=attention), 1280)
    assert n_params(model) == expected


# ---------------------------------------------------------------- detector configs
CONFIGS = [
    # (config, plain twin, attention class, checkpoint)
    ('faster_rcnn_se_r50_coco.py', 'faster_rcnn_r50_coco.py', SE, 'se_r50_in1k.pth'),
    ('faster_rcnn_ca_r50_coco.py', 'faster_rcnn_r50_coco.py', CoordAttention, 'ca_r50_in1k.pth'),
    ('faster_rcnn_se_r50_voc.py', 'faster_rcnn_r50_voc.py', SE, 'se_r50_in1k.pth'),
    ('faster_rcnn_ca_r50_voc.py', 'faster_rcnn_r50_voc.py', CoordAttention, 'ca_r50_in1k.pth'),
    ('ssdlite320_se_mobilenext_coco.py', 'ssdlite320_mobilenext_coco.py', SE,
     'se_mobilenext_in1k.pth'),
    ('ssdlite320_ca_mobilenext_coco.py', 'ssdlite320_mobilenext_coco.py', CoordAttention,
     'ca_mobilenext_in1k.pth'),
    ('ssdlite320_se_mobilenext_voc.py', 'ssdlite320_mobilenext_voc.py', SE,
     'se_mobilenext_in1k.pth'),
    ('ssdlite320_ca_mobilenext_voc.py', 'ssdlite320_mobilenext_voc.py', CoordAttention,
     'ca_mobilenext_in1k.pth'),
]
# Parameters the attention layers add to the backbone.
ADDED = {SE: {'faster': SE_R50_PARAMS - R50_PARAMS, 'ssdlite': SE_MX_PARAMS - MX_PARAMS},
         CoordAttention: {'faster': CA_R50_PARAMS - R50_PARAMS,
                          'ssdlite': CA_MX_PARAMS - MX_PARAMS}}


def build_detector(config: str):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    init_cfg = cfg.model.backbone.init_cfg
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    return cfg, init_cfg, MMDET_MODELS.build(cfg.model)


@pytest.mark.parametrize('config,twin,cls,checkpoint', CONFIGS,
                         ids=[c[0][:-3] for c in CONFIGS])
def test_config_loads_and_builds(config, twin, cls, checkpoint):
    cfg, init_cfg, model = build_detector(config)
    twin_cfg, twin_init_cfg, twin_model = build_detector(twin)
    assert init_cfg == dict(twin_init_cfg, checkpoint=f'checkpoints/{checkpoint}')
    # Same training: everything but the backbone is the plain twin's.
    for key in ('train_cfg', 'param_scheduler', 'optim_wrapper', 'train_dataloader',
                'val_evaluator', 'auto_scale_lr'):
        assert cfg[key] == twin_cfg[key], key
    assert {k: v for k, v in cfg.model.items() if k != 'backbone'} == \
        {k: v for k, v in twin_cfg.model.items() if k != 'backbone'}
    layers = [m for m in model.backbone.modules() if isinstance(m, cls)]
    assert len(layers) == (16 if config.startswith('faster') else 20)
    kind = 'faster' if config.startswith('faster') else 'ssdlite'
    assert n_params(model) - n_params(twin_model) == ADDED[cls][kind]
    assert sum(n_params(m) for m in layers) == ADDED[cls][kind]


def test_classifier_checkpoint_keys_match_detector_backbone():
    # A pretrained SE-ResNet-50 classifier (prefix 'backbone.') loads into the detector.
    _, _, det = build_detector('faster_rcnn_se_r50_coco.py')
    clf = classifier(dict(type='mmdet.ResNet', depth=50, out_indices=(3, ), plugins=[
        dict(cfg=dict(type='SE', reduction=16), position='after_conv3')]), 2048)
    assert set(clf.backbone.state_dict()) == set(det.backbone.state_dict())
