"""Backbone-only files (tools/model_converters/ean_checkpoint.py) and safe checkpoint files
(ean_mm.checkpoint).

Sources are randomised ResNet-50s (no downloads): a torchvision ``resnet50`` state dict saved
flat, and an mmpretrain ``ImageClassifier`` saved like an MMEngine training checkpoint (meta,
state_dict, optimizer, message_hub with a real HistoryBuffer, param_schedulers).
"""
import argparse
import os
from typing import Dict

import pytest
import torch
import torchvision
from mmengine.logging import MessageHub
from conftest import load_tool
from mmengine.registry import init_default_scope

import ean_mm  # noqa: F401  (registers EANResNet, allow-lists MMEngine checkpoint globals)
from ean_mm.checkpoint import load_checkpoint_file
from ean_mm.utils import InputError

TOOL = 'tools/model_converters/ean_checkpoint.py'
converter = load_tool(TOOL)
backbone_only_file, extract_backbone = converter.backbone_only_file, converter.extract_backbone


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
    assert converter.main(['backbone', str(path), str(out)]) == 1
    assert 'error: ' in capsys.readouterr().err and not out.exists()


def test_refuses_overwrite(mmpre_ckpt, tmp_path):
    src, _ = mmpre_ckpt
    out = tmp_path / 'exists.pth'
    out.write_bytes(b'keep me')
    with pytest.raises(InputError, match='refusing to overwrite'):
        backbone_only_file(str(src), str(out))
    assert out.read_bytes() == b'keep me'
    with pytest.raises(InputError, match='is the input file'):
        backbone_only_file(str(src), str(src), force=True)


def test_cli(mmpre_ckpt, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        converter.parse_args(['backbone', '--help'])
    assert exc.value.code == 0 and '--keep-head' in capsys.readouterr().out
    bb = tmp_path / 'cli' / 'backbone.pth'
    assert converter.main(['backbone', str(mmpre_ckpt[0]), str(bb), '--keep-head']) == 0
    printed = capsys.readouterr().out
    assert 'kept backbone.*' in printed and 'kept head.*' in printed and 'file size' in printed
    assert converter.main(['backbone', str(mmpre_ckpt[0]), str(bb)]) == 1
    assert 'refusing to overwrite' in capsys.readouterr().err
