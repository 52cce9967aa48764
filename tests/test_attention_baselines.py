"""SE and Coordinate Attention, the paper's baselines: equation references, the scoped registry,
one ``attention_cfg`` mechanism in ResNet and MobileNeXt, parameter counts, detection twins."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.config import Config
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

import ean_mm  # noqa: F401
from ean_mm.checkpoint import load_pretrained
from ean_mm.models import AttentionResNet, CoordAttention, MobileNeXt, SE
from ean_mm.paper import classifier_cfg
from ean_mm.utils import InputError

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REGISTRIES = pytest.mark.parametrize('registry', [ROOT_MODELS, MMDET_MODELS, MMPRETRAIN_MODELS],
                                     ids=['mmengine', 'mmdet', 'mmpretrain'])
LAYERS = pytest.mark.parametrize('name,cls,abbr', [('ean_mm.SE', SE, 'se'),
                                                   ('ean_mm.CoordAttention', CoordAttention,
                                                    'ca')])

# ImageNet classifiers (mmpretrain ImageClassifier: GAP + LinearClsHead, 1000 classes).
R50_PARAMS = 25_557_032
SE_R50_PARAMS = 28_088_024  # standard SE-ResNet-50 (paper Table 3: 28.09M)
CA_R50_PARAMS = 27_474_864  # CA r=32, mip=max(8, C//32) (paper Table 3: 28.08M)
MX_PARAMS = 3_535_416  # the authors' MobileNeXt (paper Table 3: 3.54M)
SE_MX_PARAMS = 4_384_389  # SE after each block's last conv (paper Table 3: 4.19M)
CA_MX_PARAMS = 4_191_151  # paper Table 3: 4.39M
MV2_PARAMS = 3_504_872  # mmpretrain's MobileNetV2 classifier (paper Table 3: 3.50M)
SE_MV2_PARAMS = 4_076_486  # SE on the expansion (paper Table 3: 4.08M)
CA_MV2_PARAMS = 3_951_504  # paper Table 3: 4.37M


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def randomize_(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)


# ---------------------------------------------------------------- registry and attention_cfg
@REGISTRIES
@LAYERS
def test_builds_by_scoped_name(registry, name, cls, abbr):
    layer = registry.build(dict(type=name, in_channels=64))
    assert type(layer) is cls and cls._abbr_ == abbr
    assert registry.get(name) is cls


def test_generic_names_stay_free_for_other_packages():
    # ean_mm registers in its own scope: another package may register 'SE' / 'CoordAttention'
    # in the root registry (which raised "already registered" while ours were there).
    others = {name: type(name, (torch.nn.Module, ), {}) for name in ('SE', 'CoordAttention')}
    try:
        for name, cls in others.items():
            ROOT_MODELS.register_module(name=name, module=cls)
        for registry in (ROOT_MODELS, MMDET_MODELS, MMPRETRAIN_MODELS):
            assert registry.get('SE') is others['SE'] and registry.get('ean_mm.SE') is SE
            assert registry.get('CoordAttention') is others['CoordAttention']
            assert registry.get('ean_mm.CoordAttention') is CoordAttention
    finally:
        for name in others:
            ROOT_MODELS._module_dict.pop(name)


@LAYERS
def test_stock_resnet_plugin_after_conv3(name, cls, abbr):
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
def test_attention_resnet_is_stock_resnet_with_the_plugin(name, cls, abbr):
    # Same modules, keys and outputs as mmdet's ResNet with the layer as after_conv3 plugin.
    ours = AttentionResNet(depth=50, attention_cfg=dict(type=name)).eval()
    stock = MMDET_MODELS.build(dict(type='mmdet.ResNet', depth=50, plugins=[
        dict(cfg=dict(type=name), position='after_conv3')]))
    stock.eval()  # mmdet's ResNet.train returns None
    assert list(ours.state_dict()) == list(stock.state_dict())
    randomize_(ours)
    stock.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours(x), stock(x)):
            assert torch.equal(a, b)


@LAYERS
def test_attention_in_basic_blocks_before_the_add(name, cls, abbr):
    net = AttentionResNet(depth=18, attention_cfg=dict(type=name, postfix='_1')).eval()
    layers = {k: m for k, m in net.named_modules() if isinstance(m, cls)}
    assert sorted(layers)[:2] == [f'layer1.0.{abbr}_1', f'layer1.1.{abbr}_1'] and len(layers) == 8
    # A zero map in the layer's place leaves relu(identity): it sits before the residual add.
    block = net.layer1[0]
    zero = torch.nn.Conv2d(64, 64, 1, bias=False)
    torch.nn.init.zeros_(zero.weight)
    setattr(block, f'{abbr}_1', zero)
    x = torch.randn(1, 64, 8, 8)
    with torch.no_grad():
        assert torch.equal(block(x), torch.relu(x))


@pytest.mark.parametrize('attention', [dict(type='SE'), dict(type='ean_mm.SE'),
                                       dict(type='CoordAttention')])
def test_attention_type_resolves_in_ean_mm_scope_from_any_default_scope(attention):
    for scope in ('mmdet', 'mmpretrain', 'mmengine'):
        init_default_scope(scope)
        net = MMDET_MODELS.build(dict(type='ean_mm.MobileNeXt', attention_cfg=attention))
        expected = CoordAttention if 'Coord' in attention['type'] else SE
        assert sum(isinstance(m, expected) for m in net.modules()) == 20


def test_unknown_attention_type_is_a_clear_error():
    with pytest.raises(KeyError, match="'NoSuchLayer' is not registered in scope 'ean_mm'"):
        AttentionResNet(depth=18, attention_cfg=dict(type='NoSuchLayer'))


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
def test_pretrained_report_and_strict_for_attention_twins(name, cls, abbr, tmp_path):
    """The checkpoint: a classifier's layout, ``{'state_dict': {'backbone.<key>': ...}}``
    (open-mmlab/mmengine ``mmengine/runner/runner.py`` @ 0050ff70b73e047defe9db0c3bb01555038596b7
    ``Runner.save_checkpoint``; ``backbone`` is mmpretrain's ``ImageClassifier`` attribute), the
    keys those of the installed mmdet 3.3.0 ``ResNet`` class, which names its layers as
    open-mmlab/mmpretrain ``mmpretrain/models/backbones/resnet.py`` @
    df9eaeedf1f4a7aa39473dfee3e588bf8106c76e does (``conv1``, ``bn1``, ``layerN.M.*``)."""
    # A plain ResNet-18 checkpoint into the SE / CA twin: loads every ResNet tensor, names the
    # attention tensors it lacks, and strict=True refuses it (the path EAN backbones use too).
    plain = MMDET_MODELS.build(dict(type='mmdet.ResNet', depth=18))
    randomize_(plain)
    path = tmp_path / 'r18.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in plain.state_dict().items()}}, path)
    twin = AttentionResNet(depth=18, attention_cfg=dict(type=name),
                           init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                         prefix='backbone.'))
    twin.init_weights()
    assert torch.equal(twin.layer4[1].conv2.weight, plain.layer4[1].conv2.weight)
    report = load_pretrained(twin, str(path), prefix='backbone.')
    assert len(report['loaded']) == len(plain.state_dict())
    assert report['missing'] and all(f'.{abbr}.' in k for k in report['missing'])
    with pytest.raises(InputError, match=rf'missing in checkpoint .*layer1\.0\.{abbr}\.'):
        load_pretrained(twin, str(path), prefix='backbone.', strict=True)


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
def classifier(name: str):
    return MMPRETRAIN_MODELS.build(classifier_cfg(name))


@pytest.mark.parametrize('name,expected', [
    ('r50', R50_PARAMS), ('se-r50', SE_R50_PARAMS), ('ca-r50', CA_R50_PARAMS),
    ('mx', MX_PARAMS), ('se-mx', SE_MX_PARAMS), ('ca-mx', CA_MX_PARAMS),
    ('mv2', MV2_PARAMS), ('se-mv2', SE_MV2_PARAMS), ('ca-mv2', CA_MV2_PARAMS)])
def test_classifier_parameter_counts(name, expected):
    assert n_params(classifier(name)) == expected


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
    # The twin's init with the variant's own ImageNet checkpoint (mmpretrain layout).
    assert init_cfg == dict(twin_init_cfg, checkpoint=f'checkpoints/{checkpoint}',
                            prefix='backbone.')
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


@pytest.mark.parametrize('pretrain,detector', [('se_r50_in1k', 'faster_rcnn_se_r50_coco.py'),
                                               ('ca_mobilenext_in1k',
                                                'ssdlite320_ca_mobilenext_voc.py')])
def test_pretraining_config_keys_match_detector_backbone(pretrain, detector):
    # What configs/pretrain/<name>.py trains loads into the detector under the prefix 'backbone.'.
    _, _, det = build_detector(detector)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'pretrain', f'{pretrain}.py'))
    init_default_scope('mmpretrain')
    clf = MMPRETRAIN_MODELS.build(cfg.model)
    assert clf.backbone.state_dict().keys() == det.backbone.state_dict().keys()
