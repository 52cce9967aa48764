"""EAN backbones started from plain checkpoints compute exactly what the plain network computes
(ean_mm.checkpoint.plain_start through init_cfg Pretrained)."""

import pytest
import torch
import torchvision
from conftest import ROOT, randomised
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

from ean_mm.checkpoint import load_pretrained
from ean_mm.checkpoint import pretrained as pretrained_mod
from ean_mm.models import EAN, EANResNet
from ean_mm.utils import InputError

@pytest.fixture(scope='module')
def files(tmp_path_factory, public_weights):
    """Plain checkpoints in the layouts users have: name -> (path, prefix)."""
    folder = tmp_path_factory.mktemp('plain')
    init_default_scope('mmpretrain')
    mv2 = MMPRETRAIN_MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='mmpretrain.MobileNetV2'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=1280)))
    # mmpretrain's ResNet-50 classifier (its configs/_base_/models/resnet50.py): backbone.*,
    # head.fc.* (mmpretrain/models/heads/linear_head.py @ 9fe593e: LinearClsHead.fc)
    r50 = MMPRETRAIN_MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='mmpretrain.ResNet', depth=50,
                                              out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048)))
    states = {
        'torchvision_r18': randomised(torchvision.models.resnet18().state_dict()),
        'mmpretrain_r50': randomised(r50.state_dict(), 1),
        'mmpretrain_mobilenetv2': randomised(mv2.state_dict(), 2),
    }
    paths = {}
    for name, state in states.items():
        paths[name] = folder / f'{name}.pth'
        wrapped = state if name.startswith('torchvision') else {'meta': {}, 'state_dict': state}
        torch.save(wrapped, paths[name])
    paths['torchvision_r50'] = public_weights['torchvision_r50']
    paths['authors_mobilenext'] = public_weights['mobilenext']  # converted from their layout
    prefix = {'torchvision_r50': None, 'torchvision_r18': None, 'mmpretrain_r50': 'backbone.',
              'authors_mobilenext': 'backbone.', 'mmpretrain_mobilenetv2': 'backbone.'}
    return {name: (str(paths[name]), prefix[name]) for name in paths}


CASES = [
    # (file, EAN backbone cfg, its plain twin's cfg)
    ('torchvision_r50', dict(type='ean_mm.EANResNet', depth=50),
     dict(type='mmdet.ResNet', depth=50)),
    ('mmpretrain_r50', dict(type='ean_mm.EANResNet', depth=50),
     dict(type='mmdet.ResNet', depth=50)),
    ('torchvision_r18', dict(type='ean_mm.EANResNet', depth=18, ean_groups=32),
     dict(type='mmdet.ResNet', depth=18)),
    ('authors_mobilenext', dict(type='ean_mm.EANMobileNeXt', out_indices=(4, 7)),
     dict(type='ean_mm.MobileNeXt', out_indices=(4, 7))),
    ('mmpretrain_mobilenetv2', dict(type='ean_mm.EANMobileNetV2', out_indices=(4, 7)),
     dict(type='mmpretrain.MobileNetV2', out_indices=(4, 7))),
]


def build(cfg: dict, path: str, prefix, **init) -> torch.nn.Module:
    model = MMDET_MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=path,
                                                       prefix=prefix, **init)))
    model.init_weights()
    return model


@pytest.mark.parametrize('name,ean_cfg,plain_cfg', CASES, ids=[c[0] for c in CASES])
def test_bit_exact_with_the_plain_network_in_eval_and_train_mode(files, name, ean_cfg,
                                                                 plain_cfg, monkeypatch):
    path, prefix = files[name]
    logged = []
    monkeypatch.setattr(pretrained_mod, 'print_log', lambda msg, **kw: logged.append(msg))
    ean = build(ean_cfg, path, prefix, strict=True)  # strict accepts a plain checkpoint
    plain = build(plain_cfg, path, prefix)
    layers = [m for m in ean.modules() if isinstance(m, EAN)]
    assert f'plain checkpoint, {len(layers)} EAN layers start as the plain network' in logged[0]
    x = torch.randn(2, 3, 64, 64)
    for mode in (False, True):  # eval, then train (batch statistics)
        ean.train(mode), plain.train(mode)
        outs = ean(x)
        for a, b in zip(outs, plain(x)):
            assert torch.equal(a, b)
    sum(o.pow(2).sum() for o in outs).backward()  # EAN learns its attention from here
    assert all(m.alpha.grad is not None for m in layers)
    assert sum(torch.count_nonzero(m.alpha.grad) for m in layers) > 0
    assert sum(torch.count_nonzero(m.delta.grad) for m in layers) > 0


def test_torchvision_url_as_in_mmdet(files, public_weights, tmp_path, monkeypatch):
    # torchvision://resnet50 from torch's cache (what a download leaves there), no network.
    monkeypatch.setenv('TORCH_HOME', str(public_weights['torch_home']))
    ean = build(dict(type='ean_mm.EANResNet', depth=50), 'torchvision://resnet50', None)
    plain = build(dict(type='mmdet.ResNet', depth=50), files['torchvision_r50'][0], None)
    x = torch.randn(1, 3, 64, 64)
    ean.eval(), plain.eval()
    assert torch.equal(ean(x)[-1], plain(x)[-1])
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', _no_network)
    with pytest.raises(InputError, match=r"'torchvision://resnet50' could not be downloaded"):
        build(dict(type='ean_mm.EANResNet', depth=50), 'torchvision://resnet50', None)


def _no_network(url, *args, **kwargs):
    import urllib.error
    raise urllib.error.URLError('no network')


@pytest.mark.parametrize('stock', [dict(type='mmdet.ResNet', depth=50),
                                   dict(type='mmdet.ResNeXt', depth=50, groups=32, base_width=4)])
def test_stock_resnet_with_ean_plugin_through_ean_mm_pretrained(files, tmp_path, stock):
    plain = MMDET_MODELS.build(stock)
    state = randomised(plain.state_dict(), 3)
    path = tmp_path / 'plain.pth'
    torch.save(state, path)
    plain.load_state_dict(state)
    plugin = [dict(cfg=dict(type='ean_mm.EAN', groups=64), position='after_conv3')]
    ean = MMDET_MODELS.build(dict(stock, plugins=plugin,
                                  init_cfg=dict(type='ean_mm.Pretrained', checkpoint=str(path))))
    ean.init_weights()
    x = torch.randn(1, 3, 64, 64)
    ean.eval(), plain.eval()
    assert torch.equal(ean(x)[-1], plain(x)[-1])


def test_ean_checkpoint_loads_unchanged(tmp_path):
    source = EANResNet(depth=50)
    state = randomised(source.state_dict(), 4)
    path = tmp_path / 'ean.pth'
    torch.save({'state_dict': state}, path)
    model = build(dict(type='ean_mm.EANResNet', depth=50), str(path), None, strict=True)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_refusals(files, tmp_path):
    path, prefix = files['torchvision_r50']
    state = torch.load(path, weights_only=True)

    half = dict(state, **{'layer1.0.ean.alpha': torch.zeros(4)})  # one EAN tensor of 64
    torch.save(half, tmp_path / 'half.pth')
    with pytest.raises(InputError, match=r'holds 1 of the 64 EAN tensors.*neither an EAN '
                                         'checkpoint of this network nor a plain one'):
        load_pretrained(EANResNet(depth=50), str(tmp_path / 'half.pth'))

    stale = EANResNet(depth=50)
    with torch.no_grad():
        stale.layer2[1].ean.alpha.fill_(0.3)
    with pytest.raises(InputError, match=r'not fresh.*layer2\.1\.ean'):
        load_pretrained(stale, path)

    no_norm = {k: v for k, v in state.items() if k != 'layer3.2.bn3.weight'}
    torch.save(no_norm, tmp_path / 'no_norm.pth')
    with pytest.raises(InputError, match=r'layer3\.2\.bn3\.weight \(missing\), the norm an EAN '
                                         'layer follows'):
        load_pretrained(EANResNet(depth=50), str(tmp_path / 'no_norm.pth'))

    r101 = torchvision.models.resnet101().state_dict()  # a deeper network: bn3 shapes differ
    wrong = dict(state, **{'layer4.0.bn3.weight': r101['layer4.0.bn3.weight'][:7]})
    torch.save(wrong, tmp_path / 'wrong.pth')
    with pytest.raises(InputError, match=r'layer4\.0\.bn3\.weight \(shape \(7,\)\)'):
        load_pretrained(EANResNet(depth=50), str(tmp_path / 'wrong.pth'))

    elsewhere = MMDET_MODELS.build(dict(type='mmdet.ResNet', depth=50, plugins=[
        dict(cfg=dict(type='ean_mm.EAN', groups=16), position='after_conv2')]))
    with pytest.raises(InputError, match=r'layer1\.0\.ean: its input is not the output of an '
                                         'affine norm layer'):
        load_pretrained(elsewhere, path)


def test_strict_still_refuses_a_partial_plain_load(files, tmp_path):
    state = torch.load(files['torchvision_r50'][0], weights_only=True)
    partial = tmp_path / 'partial.pth'
    torch.save({k: v for k, v in state.items() if k != 'layer1.0.conv1.weight'}, partial)
    with pytest.raises(InputError, match=r'(?s)missing in checkpoint \(1\): '
                                         r'layer1\.0\.conv1\.weight.*strict=True'):
        build(dict(type='ean_mm.EANResNet', depth=50), str(partial), None, strict=True)
    report = load_pretrained(EANResNet(depth=50), str(partial))  # not strict: loads, reports
    assert report['missing'] == ['layer1.0.conv1.weight'] and len(report['plain_start']) == 16
    assert report['unexpected'] == ['fc.weight', 'fc.bias']


def test_a_file_without_bn_counters_loads_strictly(files, tmp_path):
    # Whether torchvision's published file holds num_batches_tracked is not documented; files
    # saved by torch < 0.4.1 have none. Either way it is a full set of weights.
    state = torch.load(files['torchvision_r50'][0], weights_only=True)
    bare = tmp_path / 'no_counters.pth'
    torch.save({k: v for k, v in state.items() if not k.endswith('num_batches_tracked')}, bare)
    with_counters = build(dict(type='ean_mm.EANResNet', depth=50), files['torchvision_r50'][0],
                          None, strict=True).eval()
    without = build(dict(type='ean_mm.EANResNet', depth=50), str(bare), None,
                    strict=True).eval()
    report = load_pretrained(EANResNet(depth=50), str(bare))
    assert report['missing'] == [] and len(report['plain_start']) == 16
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(with_counters(x), without(x)))


def test_imagenet_finetune_configs_start_as_the_public_classifiers(files, public_weights,
                                                                   monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(public_weights['torch_home']))
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(str(ROOT / 'configs/pretrain/ean_r50_in1k_from_torchvision.py'))
    ean = MMPRETRAIN_MODELS.build(cfg.model)
    ean.init_weights()
    public = torchvision.models.resnet50()
    public.load_state_dict(torch.load(files['torchvision_r50'][0], weights_only=True))
    x = torch.randn(2, 3, 64, 64)
    ean.eval(), public.eval()
    with torch.no_grad():  # the EAN classifier's logits are torchvision's
        torch.testing.assert_close(ean(x, mode='tensor'), public(x), rtol=0, atol=1e-6)

    cfg = Config.fromfile(str(ROOT / 'configs/pretrain/ean_mobilenext_in1k_from_authors.py'))
    for part in ('backbone', 'head'):
        cfg.model[part].init_cfg.checkpoint = files['authors_mobilenext'][0]
    ean = MMPRETRAIN_MODELS.build(cfg.model)
    ean.init_weights()
    plain = MMPRETRAIN_MODELS.build(Config.fromfile(
        str(ROOT / 'configs/pretrain/mobilenext_in1k.py')).model)
    plain.load_state_dict(torch.load(files['authors_mobilenext'][0],
                                     weights_only=True)['state_dict'])
    ean.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(ean(x, mode='tensor'), plain(x, mode='tensor'))
