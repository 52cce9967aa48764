"""Checkpoint converter (tools/model_converters/ean_checkpoint.py) and safe checkpoint files
(ean_mm.checkpoint).

Sources are randomised ResNet-50s (no downloads): a torchvision ``resnet50`` state dict saved
flat, and an mmpretrain ``ImageClassifier`` saved like an MMEngine training checkpoint (meta,
state_dict, optimizer, message_hub with a real HistoryBuffer, param_schedulers).
"""
import argparse
import os
from pathlib import Path
from typing import Dict

import pytest
import torch
import torchvision
from mmengine.logging import MessageHub
from conftest import load_tool, run_tool
from mmengine.registry import init_default_scope

import ean_mm  # noqa: F401  (registers EANResNet, allow-lists MMEngine checkpoint globals)
from ean_mm.checkpoint import load_checkpoint_file
from ean_mm.models import EANResNet
from ean_mm.utils import InputError

TOOL = 'tools/model_converters/ean_checkpoint.py'
converter = load_tool(TOOL)
EAN_FRESH_VALUES = converter.EAN_FRESH_VALUES
backbone_only_file, resnet_to_ean_file = converter.backbone_only_file, converter.resnet_to_ean_file
convert_resnet_to_ean, extract_backbone = converter.convert_resnet_to_ean, converter.extract_backbone
infer_resnet_depth = converter.infer_resnet_depth
NUM_EAN_TENSORS_R50 = 16 * 4  # 16 bottlenecks x {gn.weight, gn.bias, alpha, delta}


@torch.no_grad()
def _randomise(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """Fill every tensor of ``model`` with random values; return a copy of its state dict."""
    for key, value in model.state_dict().items():  # the tensors share storage with the model
        if key.endswith('num_batches_tracked'):
            value.fill_(int(torch.randint(1, 10**6, ())))
        elif key.endswith('running_var'):
            value.copy_(torch.rand_like(value) + 0.5)
        else:
            value.copy_(torch.randn_like(value))
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope='module')
def tv_ckpt(tmp_path_factory):
    """torchvision layout: flat conv1.weight, bn1.*, layerX.Y.*, fc.*."""
    state_dict = _randomise(torchvision.models.resnet50(weights=None))
    path = tmp_path_factory.mktemp('tv') / 'resnet50_tv.pth'
    torch.save(state_dict, path)
    return path, state_dict


@pytest.fixture(scope='module')
def mmpre_ckpt(tmp_path_factory):
    """mmpretrain layout, saved like an MMEngine training checkpoint."""
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='ResNet', depth=50, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048)))
    state_dict = _randomise(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    hub = MessageHub.get_instance('test_checkpoint_convert')
    hub.update_scalar('train/loss', 1.5)
    hub.update_info('iter', 10)
    checkpoint = {
        'meta': {'epoch': 100, 'iter': 500000, 'seed': 0, 'mmengine_version': '0.10.7',
                 'dataset_meta': {'classes': ['a', 'b']}},
        'state_dict': state_dict,
        'optimizer': optimizer.state_dict(),
        'message_hub': hub.state_dict(),
        'param_schedulers': [{'T_max': 100, 'eta_min': 0.0, 'last_epoch': 100}],
    }
    path = tmp_path_factory.mktemp('mmpre') / 'resnet50_mmpretrain.pth'
    torch.save(checkpoint, path)
    return path, state_dict


def _load_into_ean_resnet(path: Path) -> Dict[str, torch.Tensor]:
    """Load ``path`` (weights_only) into EANResNet(depth=50) with strict=True; return its sd."""
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    assert set(checkpoint) == {'meta', 'state_dict'}
    backbone = {k[len('backbone.'):]: v for k, v in checkpoint['state_dict'].items()
                if k.startswith('backbone.')}
    model = EANResNet(depth=50)
    model.load_state_dict(backbone, strict=True)
    return checkpoint


def _check_ean_init(state_dict: Dict[str, torch.Tensor], source: Dict[str, torch.Tensor],
                    source_prefix: str, fc_prefix: str) -> None:
    ean_keys = [k for k in state_dict if '.ean.' in k]
    assert len(ean_keys) == NUM_EAN_TENSORS_R50
    for key in ean_keys:
        value = EAN_FRESH_VALUES[key.split('.ean.', 1)[1]]
        assert torch.all(state_dict[key] == value), key
    resnet_keys = [k for k in state_dict if k.startswith('backbone.') and '.ean.' not in k]
    src_backbone = [k for k in source if k.startswith(source_prefix) and not k.startswith('fc.')
                    and not k.startswith('head.')]
    assert len(resnet_keys) == len(src_backbone) == 318
    for key in resnet_keys:
        src = source[source_prefix + key[len('backbone.'):]]
        assert torch.equal(state_dict[key], src), key
    assert torch.equal(state_dict['head.fc.weight'], source[fc_prefix + 'fc.weight'])
    assert torch.equal(state_dict['head.fc.bias'], source[fc_prefix + 'fc.bias'])
    assert len(state_dict) == 318 + NUM_EAN_TENSORS_R50 + 2


def test_infer_depth(tv_ckpt):
    assert infer_resnet_depth(tv_ckpt[1]) == 50
    assert infer_resnet_depth(torchvision.models.resnet18().state_dict()) == 18
    assert infer_resnet_depth({'conv1.weight': None}) is None


def test_resnet18_basic_blocks():
    source = _randomise(torchvision.models.resnet18(weights=None))
    new, report = convert_resnet_to_ean(source, layout='torchvision')
    assert report.depth == 18 and len(report.initialised) == 8 * 4
    model = EANResNet(depth=18)
    model.load_state_dict({k[len('backbone.'):]: v for k, v in new['state_dict'].items()
                           if k.startswith('backbone.')}, strict=True)
    assert torch.equal(model.layer4[1].conv2.weight, source['layer4.1.conv2.weight'])
    assert torch.equal(new['state_dict']['head.fc.weight'], source['fc.weight'])


def test_torchvision_to_ean(tv_ckpt, tmp_path):
    src, source = tv_ckpt
    out = tmp_path / 'deep' / 'dir' / 'ean_r50.pth'
    report = resnet_to_ean_file(str(src), str(out))
    assert report.layout == 'torchvision' and report.depth == 50 and report.ean_groups == 64
    checkpoint = _load_into_ean_resnet(out)
    _check_ean_init(checkpoint['state_dict'], source, '', '')
    assert report.kept['head.fc.weight'] == 'fc.weight'
    assert len(report.kept) == 320 and len(report.initialised) == NUM_EAN_TENSORS_R50
    meta = checkpoint['meta']
    assert meta['source_layout'] == 'torchvision'
    assert meta['backbone'] == dict(type='ean_mm.EANResNet', depth=50, ean_groups=64)
    text = report.format()
    assert 'initialised 64 EAN tensors' in text and 'copied 318 ResNet tensors' in text
    assert 'layer4.{0..2}.ean.{gn.weight,gn.bias,alpha,delta} [32]' in text


def test_mmpretrain_to_ean(mmpre_ckpt, tmp_path):
    src, source = mmpre_ckpt
    out = tmp_path / 'ean_r50.pth'
    report = resnet_to_ean_file(str(src), str(out), layout='auto', depth=50)
    assert report.layout == 'mmpretrain'
    checkpoint = _load_into_ean_resnet(out)
    _check_ean_init(checkpoint['state_dict'], source, 'backbone.', 'head.')
    assert set(report.dropped_entries) == {'optimizer', 'message_hub', 'param_schedulers'}
    assert checkpoint['meta']['source_meta']['dataset_meta'] == {'classes': ['a', 'b']}

    # What detection configs do: init_cfg=Pretrained with prefix='backbone.' (mmengine's loader).
    model = EANResNet(depth=50, init_cfg=dict(type='Pretrained', checkpoint=str(out),
                                              prefix='backbone.'))
    model.init_weights()
    assert torch.equal(model.layer3[5].conv2.weight, source['backbone.layer3.5.conv2.weight'])
    assert torch.all(model.layer2[1].ean.gn.weight == 1)


def test_backbone_job(mmpre_ckpt, tmp_path):
    src, source = mmpre_ckpt
    out = tmp_path / 'sub' / 'backbone.pth'
    report = backbone_only_file(str(src), str(out))
    checkpoint = torch.load(out, map_location='cpu', weights_only=True)
    assert set(checkpoint) == {'meta', 'state_dict'}
    expected = {k for k in source if k.startswith('backbone.')}
    assert set(checkpoint['state_dict']) == expected and len(expected) == 318
    for key in expected:
        assert torch.equal(checkpoint['state_dict'][key], source[key]), key
    assert report.after.tensors == 318 and report.before.tensors == 320
    assert report.dropped == ['head.fc.weight', 'head.fc.bias']
    assert set(report.dropped_entries) == {'optimizer', 'message_hub', 'param_schedulers'}
    assert report.size_after < report.size_before == os.path.getsize(src)
    assert os.path.getsize(out) == report.size_after
    assert checkpoint['meta']['kept'] == ['backbone.*']
    assert checkpoint['meta']['num_tensors'] == 318
    text = report.format()
    assert 'dropped top-level entries' in text and 'file size' in text

    # --keep-head keeps head.* (and neck.*, none for GAP) as well.
    new, report = extract_backbone({'state_dict': source, 'meta': {}}, keep_head=True)
    assert set(new['state_dict']) == set(source) and not report.dropped


def test_backbone_job_refuses_checkpoint_without_backbone(tv_ckpt, tmp_path):
    src, _ = tv_ckpt
    with pytest.raises(InputError) as err:
        backbone_only_file(str(src), str(tmp_path / 'out.pth'))
    assert str(src) in str(err.value) and 'conv1.weight' in str(err.value)
    assert not (tmp_path / 'out.pth').exists()


def test_ean_checkpoint_is_refused(tv_ckpt):
    ean, _ = convert_resnet_to_ean(tv_ckpt[1])
    with pytest.raises(InputError, match='already an EAN-ResNet') as err:
        convert_resnet_to_ean(ean, source='ean.pth')
    assert 'backbone.layer1.0.ean.alpha' in str(err.value)


def test_wrong_depth_missing_and_mismatched_tensors(tv_ckpt):
    source = tv_ckpt[1]
    with pytest.raises(InputError, match=r'--depth 101 .*ResNet-50'):
        convert_resnet_to_ean(source, depth=101)

    r101 = dict(source)
    r101['layer3.6.conv1.weight'] = source['layer3.5.conv1.weight']  # 7 blocks: no known depth
    with pytest.raises(InputError, match='cannot infer the ResNet depth'):
        convert_resnet_to_ean(r101)
    with pytest.raises(InputError, match=r'layer3\.6\.conv1\.weight'):
        convert_resnet_to_ean(r101, depth=50)

    missing = {k: v for k, v in source.items() if k != 'layer2.1.conv2.weight'}
    with pytest.raises(InputError, match=r'missing ResNet tensors: layer2\.1\.conv2'):
        convert_resnet_to_ean(missing)

    bad_shape = dict(source)
    bad_shape['layer4.0.bn1.weight'] = torch.ones(3)
    with pytest.raises(InputError, match=r'layer4\.0\.bn1\.weight \[3\]'):
        convert_resnet_to_ean(bad_shape)

    with pytest.raises(InputError, match='--layout mmpretrain'):
        convert_resnet_to_ean(source, layout='mmpretrain')

    with pytest.raises(InputError, match='ean_groups=48'):
        convert_resnet_to_ean(source, ean_groups=48)


def test_old_checkpoint_without_num_batches_tracked(tv_ckpt):
    old = {k: v for k, v in tv_ckpt[1].items() if not k.endswith('num_batches_tracked')}
    new, report = convert_resnet_to_ean(old)
    filled = [k for k in report.initialised if k.endswith('num_batches_tracked')]
    assert len(filled) == 53
    assert all(int(new['state_dict'][k]) == 0 for k in filled)
    assert 'num_batches_tracked' in report.format()


def test_other_ean_groups(tv_ckpt):
    new, report = convert_resnet_to_ean(tv_ckpt[1], ean_groups=32)
    assert new['state_dict']['backbone.layer1.0.ean.alpha'].shape == (8, )
    model = EANResNet(depth=50, ean_groups=32)
    model.load_state_dict({k[len('backbone.'):]: v for k, v in new['state_dict'].items()
                           if k.startswith('backbone.')}, strict=True)


def test_refuses_overwrite(tv_ckpt, tmp_path):
    src, _ = tv_ckpt
    out = tmp_path / 'exists.pth'
    out.write_bytes(b'keep me')
    with pytest.raises(InputError, match='refusing to overwrite'):
        resnet_to_ean_file(str(src), str(out))
    assert out.read_bytes() == b'keep me'
    with pytest.raises(InputError, match='is the input file'):
        resnet_to_ean_file(str(src), str(src), force=True)


def test_unsafe_or_broken_checkpoint_is_refused_and_nothing_written(tmp_path, capsys):
    # A pickled object beyond tensors is never unpickled; the error names the fix.
    path = tmp_path / 'reference_script.pth'
    torch.save({'model': {'w': torch.zeros(2)}, 'args': argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(InputError, match=r'refused by the safe loader.*re-save its state dict'):
        load_checkpoint_file(str(path))
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match='cannot be read as a torch checkpoint'):
        load_checkpoint_file(str(truncated))
    with pytest.raises(InputError, match='no such file'):
        load_checkpoint_file(str(tmp_path / 'missing.pth'))
    out = tmp_path / 'out.pth'
    assert converter.main(['resnet-to-ean', str(path), str(out)]) == 1
    assert 'error: ' in capsys.readouterr().err and not out.exists()


def test_cli(tv_ckpt, mmpre_ckpt, tmp_path, capsys):
    out = tmp_path / 'cli' / 'ean.pth'
    result = run_tool(TOOL, 'resnet-to-ean', str(tv_ckpt[0]), str(out), '--depth', '50')
    assert 'initialised 64 EAN tensors' in result.stdout and 'layer4' in result.stdout
    _load_into_ean_resnet(out)

    assert converter.main(['resnet-to-ean', str(tv_ckpt[0]), str(out)]) == 1
    assert 'refusing to overwrite' in capsys.readouterr().err

    bb = tmp_path / 'cli' / 'backbone.pth'
    assert converter.main(['backbone', str(mmpre_ckpt[0]), str(bb), '--keep-head']) == 0
    printed = capsys.readouterr().out
    assert 'kept backbone.*' in printed and 'kept head.*' in printed and 'file size' in printed
