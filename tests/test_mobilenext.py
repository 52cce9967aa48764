"""MobileNeXt as its authors built it, their checkpoints converted, and EAN-MobileNetV2."""
import argparse
import os.path as osp
import re

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, load_tool
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.config import Config, DictAction
from mmengine.hub import get_config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.structures import DataSample
from reference_mobilenext import (blocks, official_forward, official_ssdlite_taps,
                                  official_state_dict)

import ean_mm  # noqa: F401
from ean_mm.checkpoint import ean_norm_pairs
from ean_mm.checkpoint.mobilenext_official import convert_mobilenext_official
from ean_mm.models import (EAN, AttentionMobileNetV2, EANMobileNetV2, EANMobileNeXt,
                           MobileNeXt)

converter = load_tool('tools/model_converters/mobilenext_official.py')
REGISTRIES = pytest.mark.parametrize('registry', [MMDET_MODELS, MMPRETRAIN_MODELS],
                                     ids=['mmdet', 'mmpretrain'])

# Per stage: the form of each block (F: dw-pw-pw-dw, P: pw-pw, S: pw-pw-dw) and its shortcut.
FORMS = [('F', ), ('F', ), ('S', 'F+', 'F+'), ('S', 'F+', 'F+'), ('P', 'F+', 'F+', 'F+'),
         ('S', 'F+', 'F+', 'F+'), ('P', 'F+', 'F+'), ('F', )]


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def pretrain_classifier(name: str):
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'pretrain', f'{name}.py'))
    return MMPRETRAIN_MODELS.build(cfg.model)


def randomize_(module: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if p.dim() == 1 else 0.0))


def form(block) -> str:
    kinds = ''.join('d' if m.conv.groups > 1 else 'p' for m in block.conv)
    name = {'dppd': 'F', 'pp': 'P', 'ppd': 'S'}[kinds]
    return name + ('+' if block.use_shortcut else '')


# ---------------------------------------------------------------- the authors' architecture
def test_block_forms_and_shortcuts_per_stage():
    net = MobileNeXt()
    assert [tuple(form(b) for b in getattr(net, f'layer{i}')) for i in range(1, 9)] == FORMS
    ours = [b for i in range(1, 9) for b in getattr(net, f'layer{i}')]
    for block, (layers, shortcut) in zip(ours, blocks()):
        assert block.use_shortcut == shortcut
        assert [(m.conv.in_channels, m.conv.out_channels, m.conv.stride[0]) for m in block.conv] \
            == [(cin, cout, stride) for _, cin, cout, stride, _ in layers]
    # The reduced widths of the authors' rule: in // t, at least ceil(out / 6) rounded to 16.
    assert [b.conv[-2 if b.trailing_dw else -1].conv.in_channels for b in ours] == \
        [16, 32, 32, 32, 32, 48, 48, 48, 64, 64, 64, 64, 96, 96, 96, 96, 160, 160, 160, 208]


def test_parameter_counts():
    assert n_params(pretrain_classifier('mobilenext_in1k')) == 3_535_416  # Table 3: 3.54M
    assert n_params(pretrain_classifier('ean_mobilenext_in1k')) == 3_540_256
    ean_mv2 = pretrain_classifier('ean_mobilenetv2_in1k')
    mv2_cfg = get_config('mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py')
    mmpretrain_mv2 = MMPRETRAIN_MODELS.build(mv2_cfg.model)
    assert n_params(mmpretrain_mv2) == 3_504_872  # Table 3: 3.50M
    # EAN: 4 * C/8 per block on the expanded width (the first block: its 32 input channels).
    expanded = [32, 96] + [144] * 2 + [192] * 3 + [384] * 4 + [576] * 3 + [960] * 3
    assert n_params(ean_mv2) == 3_504_872 + sum(c // 2 for c in expanded) == 3_508_440


@pytest.mark.parametrize('width', [0.5, 0.75, 1.4])
def test_other_widths_as_the_authors_build_them(width):
    sd = official_state_dict(width, num_classes=10)
    converted, _ = convert_mobilenext_official(sd, width)
    model = MobileNeXt(widen_factor=width, out_indices=(7, ))
    model.load_state_dict({k[len('backbone.'):]: v for k, v in converted.items()
                           if k.startswith('backbone.')}, strict=True)


def test_ean_after_last_norm_before_activation_and_shortcut():
    net = EANMobileNeXt().eval()
    randomize_(net)
    x = torch.randn(1, 288, 6, 6)
    with torch.no_grad():
        pw_pw = net.layer5[0]  # 288 -> 384, stride 1: pw, pw + ReLU6; EAN before the ReLU6
        c0, c1 = pw_pw.conv
        assert not c1.with_activation  # ean_mm defers it past EAN
        want = F.relu6(pw_pw.ean(c1.bn(c1.conv(c0(x)))))
        assert torch.equal(pw_pw(x), want)
        full = net.layer5[1]  # 384 -> 384: dw, pw, pw, dw + shortcut; EAN before the add
        y = want
        out = full.conv[3].bn(full.conv[3].conv(full.conv[2](full.conv[1](full.conv[0](y)))))
        assert torch.equal(full(y), y + full.ean(out))
    assert [n for n, m in net.named_modules() if isinstance(m, EAN)][:3] == [
        'layer1.0.ean', 'layer2.0.ean', 'layer3.0.ean']


def test_ssdlite_taps_inside_blocks():
    net = MobileNeXt(out_indices=(5, 7), out_tap='pre_dw').eval()
    seen = {}  # the inputs of the two blocks' final depthwise convs (a hook returning None)
    net.layer6[0].conv[-1].register_forward_hook(lambda m, i, o: seen.update({576: i[0]}))
    net.layer8[0].conv[-1].register_forward_hook(lambda m, i, o: seen.update({1280: i[0]}))
    with torch.no_grad():
        taps = net(torch.randn(1, 3, 320, 320))
    assert [tuple(t.shape) for t in taps] == [(1, 576, 20, 20), (1, 1280, 10, 10)]
    assert taps[0] is seen[576] and taps[1] is seen[1280]
    with pytest.raises(ValueError, match=r"out_tap='pre_dw'.*\[0, 1, 2, 3, 5, 7\]"):
        MobileNeXt(out_indices=(4, 7), out_tap='pre_dw')


# ---------------------------------------------------------------- the authors' checkpoint
@pytest.fixture(scope='module')
def official(tmp_path_factory):
    """The authors' checkpoint (every key and shape, random values), written three ways."""
    sd = official_state_dict()
    folder = tmp_path_factory.mktemp('official')
    files = {'bare': sd, 'state_dict': {'state_dict': sd, 'epoch': 3},
             'ddp': {'state_dict': {f'module.{k}': v for k, v in sd.items()}}}
    paths = {}
    for name, obj in files.items():
        paths[name] = folder / f'{name}.pth'
        torch.save(obj, paths[name])
    return sd, paths


@pytest.mark.parametrize('layout', ['bare', 'state_dict', 'ddp'])
def test_converted_classifier_gives_the_authors_logits(official, layout, tmp_path, capsys):
    sd, paths = official
    dst = tmp_path / 'mobilenext_in1k.pth'
    assert converter.main([str(paths[layout]), str(dst)]) == 0
    assert 'backbone tensors and the classifier (1000 classes) converted' in capsys.readouterr().out
    checkpoint = torch.load(dst, weights_only=True)
    model = pretrain_classifier('mobilenext_in1k').eval()
    model.load_state_dict(checkpoint['state_dict'], strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), official_forward(sd, x),
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('config', ['ssdlite320_mobilenext_coco',
                                    'ssdlite320_ean_mobilenext_coco'])
def test_ssdlite_configs_load_the_converted_backbone(official, tmp_path, config):
    dst = tmp_path / 'mobilenext_in1k.pth'
    assert converter.main([str(official[1]['bare']), str(dst)]) == 0
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', f'{config}.py'))
    assert cfg.model.backbone.init_cfg.checkpoint == 'checkpoints/mobilenext_in1k.pth'
    cfg.model.backbone.init_cfg.checkpoint = str(dst)
    backbone = MMDET_MODELS.build(cfg.model).backbone
    backbone.init_weights()
    converted = torch.load(dst, weights_only=True)['state_dict']
    own = backbone.state_dict()
    # Every tensor as converted; the EAN twin (tests/test_plain_start.py) with the norm before
    # each EAN doubled, so that it computes what the plain network computes.
    doubled = {f'{norm}.{p}' for norm in ean_norm_pairs(backbone).values()
               for p in ('weight', 'bias')}
    for key, value in converted.items():
        if key.startswith('backbone.'):
            key = key[len('backbone.'):]
            assert torch.equal(own[key], value * 2 if key in doubled else value), key
    assert len(doubled) == (40 if 'ean' in config else 0)


def test_fixture_has_the_authors_keys():
    # Facts of their code (tests/reference_mobilenext.py): 446 entries for 1.0x; in a block's
    # flat conv Sequential, the indices that hold tensors per form (ReLU6 entries hold none).
    sd = official_state_dict()
    assert len(sd) == 446
    indices = {}
    for key in sd:
        parts = key.split('.')
        if parts[0] == 'features' and parts[1] != '0':
            indices.setdefault(int(parts[1]), set()).add(int(parts[3]))
    full, pw_pw, strided = {0, 1, 3, 4, 5, 6, 8, 9}, {0, 1, 2, 3}, {0, 1, 2, 3, 5, 6}
    assert [indices[i] for i in range(1, 21)] == \
        [full, full] + [strided, full, full] * 2 + [pw_pw, full, full, full] + \
        [strided, full, full, full] + [pw_pw, full, full] + [full]
    assert sd['features.1.conv.8.weight'].shape == (96, 1, 3, 3)  # t = 2: its strided dw
    assert sd['features.20.conv.5.weight'].shape == (1280, 208, 1, 1)
    assert sd['classifier.1.weight'].shape == (1000, 1280)


def test_pre_dw_taps_are_the_authors_ssdlite_maps(official):
    sd, _ = official
    converted, _ = convert_mobilenext_official(sd)
    net = MobileNeXt(out_indices=(5, 7), out_tap='pre_dw').eval()
    net.load_state_dict({k[len('backbone.'):]: v for k, v in converted.items()
                         if k.startswith('backbone.')}, strict=True)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        ours, theirs = net(x), official_ssdlite_taps(sd, x)  # features[13].conv[:5], [20].conv[:8]
    assert [t.shape[1] for t in theirs] == [576, 1280]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_nested_layout_is_refused(official, tmp_path, capsys):
    # conv.j.0 / conv.j.1 per conv + BN + ReLU6 (what this converter wrongly expected before):
    # not what the authors' code writes.
    sd, _ = official
    nested = {k: v for k, v in sd.items() if not k.startswith('features.') or
              k.startswith('features.0.')}
    for i, (layers, _) in enumerate(blocks(), start=1):
        theirs, k = 0, 0  # index in the real flat Sequential, index in the nested one
        for layer in layers:
            conv, bn = (f'{k}.0', f'{k}.1') if layer[4] else (f'{k}', f'{k + 1}')
            k += 1 if layer[4] else 2
            for name, at in ((conv, theirs), (bn, theirs + 1)):
                for key in [key for key in sd if key.startswith(f'features.{i}.conv.{at}.')]:
                    nested[key.replace(f'conv.{at}.', f'conv.{name}.', 1)] = sd[key]
            theirs += 3 if layer[4] else 2
    assert len(nested) == len(sd) and 'features.1.conv.0.0.weight' in nested
    src = tmp_path / 'nested.pth'
    torch.save(nested, src)
    err = refused(src, tmp_path, capsys)
    assert 'missing' in err and "not the layout the authors' code writes" in err


def refused(src, tmp_path, capsys, *args) -> str:
    dst = tmp_path / 'out.pth'
    assert converter.main([str(src), str(dst), *args]) == 1
    assert not dst.exists() and not list(tmp_path.glob('.out.pth.*'))  # nothing written
    return capsys.readouterr().err


def test_wrong_files_are_refused(tmp_path, capsys):
    import torchvision
    mv2 = tmp_path / 'mv2.pth'
    torch.save(torchvision.models.mobilenet_v2().state_dict(), mv2)
    err = refused(mv2, tmp_path, capsys)
    assert "not the MobileNeXt authors' 1.0x ImageNet checkpoint" in err
    assert 'this is a MobileNetV2 checkpoint' in err and 'unexpected' in err

    half = tmp_path / 'half.pth'
    torch.save(official_state_dict(0.5), half)
    err = refused(half, tmp_path, capsys)
    assert 'shape mismatch' in err and 'features.0.0.weight (16, 3, 3, 3) vs (32, 3, 3, 3)' in err
    assert 'pass --widen-factor 0.5' in err

    truncated = tmp_path / 'truncated.pth'
    torch.save(official_state_dict(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:100_000])
    assert 'cannot be read as a torch checkpoint' in refused(truncated, tmp_path, capsys)

    mmpretrain = tmp_path / 'ours.pth'
    torch.save({'state_dict': {'backbone.conv1.conv.weight': torch.zeros(32, 3, 3, 3)}},
               mmpretrain)
    assert 'needs no conversion' in refused(mmpretrain, tmp_path, capsys)


# ---------------------------------------------------------------- EAN-MobileNetV2
def test_mobilenetv2_keys_and_outputs_are_mmpretrains():
    stock = MMPRETRAIN_MODELS.build(dict(type='mmpretrain.MobileNetV2', out_indices=(4, 7)))
    ours = AttentionMobileNetV2(out_indices=(4, 7))
    randomize_(stock)
    ours.load_state_dict(stock.state_dict(), strict=True)
    ours.eval(), stock.eval()  # mmpretrain's train() returns None
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours(x), stock(x)):
            assert torch.equal(a, b)


@pytest.mark.parametrize('after,index', [('expand', 0), ('depthwise', 1)])
def test_mobilenetv2_ean_in_the_expansion_stage(after, index):
    net = EANMobileNetV2(attention_after=after).eval()
    randomize_(net)
    block = net.layer3[1]  # 32 -> 32, t = 6: expand 192, dw, linear; shortcut
    assert block.ean.in_channels == 192 and block.attention_norm == f'conv.{index}.bn'
    x = torch.randn(1, 32, 8, 8)
    with torch.no_grad():
        out = x
        for i, layer in enumerate(block.conv):
            if i == index:  # EAN after the norm, before the ReLU6
                out = F.relu6(block.ean(layer.bn(layer.conv(out))))
            else:
                out = layer(out)
        assert torch.equal(block(x), x + out)
    first = net.layer1[0]  # t = 1: no expansion, EAN after the depthwise conv on 32 channels
    assert first.ean.in_channels == 32 and first.attention_norm == 'conv.0.bn'


@REGISTRIES
@pytest.mark.parametrize('cfg,cls', [(dict(type='ean_mm.EANMobileNeXt'), EANMobileNeXt),
                                     (dict(type='ean_mm.EANMobileNetV2'), EANMobileNetV2)])
def test_ean_mobile_backbones_build_and_train_a_step(registry, cfg, cls):
    assert type(registry.build(cfg)) is cls
    init_default_scope('mmpretrain')
    model = MMPRETRAIN_MODELS.build(dict(
        type='ImageClassifier', backbone=dict(cfg, out_indices=(7, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=1280)))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    data = dict(inputs=list(torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8)),
                data_samples=[DataSample().set_gt_label(i) for i in (0, 2)])
    before = {k: v.clone() for k, v in model.state_dict().items() if '.ean.' in k}
    losses = model.train_step(data, optim)
    assert torch.isfinite(losses['loss'])
    changed = [k for k, v in model.state_dict().items() if '.ean.' in k
               and not torch.equal(v, before[k])]
    assert any(k.endswith('alpha') for k in changed) and any(k.endswith('delta') for k in changed)


def unscoped(node):
    """``node`` without the ``_scope_`` markers mmengine adds to configs of another package."""
    if isinstance(node, dict):
        return {k: unscoped(v) for k, v in node.items() if k != '_scope_'}
    return [unscoped(v) for v in node] if isinstance(node, list) else node


def test_ssdlite_mobilenetv2_twin_changes_only_the_backbone():
    init_default_scope('mmdet')
    ean = Config.fromfile(osp.join(ROOT, 'configs', 'ssdlite320_ean_mobilenetv2_coco.py'))
    plain = Config.fromfile(osp.join(ROOT, 'configs', 'ssdlite320_mobilenetv2_coco.py'))
    stock = get_config('mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py')
    assert plain.model.bbox_head.pop('type') == 'ean_mm.CompatSSDHead'
    stock.model.bbox_head.pop('type')
    assert unscoped(plain.model) == unscoped(stock.model)
    assert unscoped(plain.train_cfg) == unscoped(stock.train_cfg)
    assert ean.model.backbone == dict(plain.model.backbone, type='ean_mm.EANMobileNetV2',
                                      ean_groups=8)
    detector = MMDET_MODELS.build(ean.model)
    assert sum(isinstance(m, EAN) for m in detector.backbone.modules()) == 17


def test_readme_authors_taps_options_build_a_detector():
    # The --cfg-options line of docs/backbones.md ("SSDLite taps") is param_table's AUTHORS_TAPS.
    readme = (ROOT / 'docs' / 'backbones.md').read_text()
    block = readme[readme.index('#### SSDLite taps'):readme.index('#### MobileNeXt ImageNet')]
    line = re.search(r'--cfg-options \\\n(.*?)\n```', block, re.S).group(1)
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    words = [w.replace('"', '') for w in line.replace('\\\n', ' ').split()]
    options = parser.parse_args(['--cfg-options', *words]).cfg_options
    taps = load_tool('tools/analysis/param_table.py').AUTHORS_TAPS
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()} == taps
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'ssdlite320_ean_mobilenext_coco.py'))
    cfg.merge_from_dict(dict(options, **{'model.backbone.init_cfg': None}))
    detector = MMDET_MODELS.build(cfg.model).eval()
    with torch.no_grad():
        feats = detector.extract_feat(torch.randn(1, 3, 320, 320))
    assert [tuple(f.shape[1:]) for f in feats][:2] == [(576, 20, 20), (1280, 10, 10)]
