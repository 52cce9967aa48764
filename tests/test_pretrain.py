"""ImageNet pretraining through tools/train.py on generated class folders, and exact loading of
the resulting checkpoints into the detection configs' backbones."""
import re
from pathlib import Path

import pytest
import torch
from conftest import ROOT, run_tool
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS as CLS_MODELS

import ean_mm  # noqa: F401
from ean_mm.checkpoint import load_pretrained
from ean_mm.utils import InputError

SIZE = 64
pytestmark = pytest.mark.slow  # one real training iteration per pretraining config


def run(*args: str) -> str:
    proc = run_tool(*args)
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def imagenet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('imagenet_data')
    run('tools/misc/make_synthetic_data.py', str(root), '--formats', 'imagenet',
             '--num-train', '2', '--num-val', '3', '--img-size', str(SIZE))
    return root / 'imagenet'


def tiny_pretrain_options(data_root: Path):
    """One iteration (2 images, batch 2), 64-px images, everything else as configured."""
    return ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=2',
            'val_dataloader.batch_size=3', 'default_hooks.logger.interval=1',
            'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
            'test_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'val_dataloader.persistent_workers=False',
            'test_dataloader.persistent_workers=False',
            f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}',
            f'test_dataloader.dataset.data_root={data_root}',
            f'train_dataloader.dataset.pipeline.1.scale={SIZE}',
            f'val_dataloader.dataset.pipeline.1.scale={SIZE}',
            f'val_dataloader.dataset.pipeline.2.crop_size={SIZE}',
            f'test_dataloader.dataset.pipeline.1.scale={SIZE}',
            f'test_dataloader.dataset.pipeline.2.crop_size={SIZE}']


@pytest.fixture(scope='module')
def pretrained(imagenet, tmp_path_factory):
    """name -> classifier checkpoint: the EAN ones after one iteration of tools/train.py; the
    plain ResNet-50 (stock mmpretrain training) built from its config with random weights.

    The plain one keeps the two entries of a Runner checkpoint that loading reads, ``meta`` and
    ``state_dict`` (the model's own keys: ``backbone.*``, ``head.fc.*``); source:
    open-mmlab/mmengine ``mmengine/runner/runner.py`` @
    0050ff70b73e047defe9db0c3bb01555038596b7 ``Runner.save_checkpoint``."""
    out = {}
    for name in ('ean_r50_in1k', 'ean_mobilenext_in1k'):
        work = tmp_path_factory.mktemp(name)
        log = run('tools/train.py', f'configs/pretrain/{name}.py', '--work-dir', str(work),
                  '--cfg-options', *tiny_pretrain_options(imagenet))
        assert 'Epoch(train) [1][1/1]' in log, log[-2000:]
        assert re.search(r'accuracy/top1: [\d.]+ +accuracy/top5: [\d.]+', log), log[-2000:]
        out[name] = work / 'epoch_1.pth'
    init_default_scope('mmpretrain')
    plain = CLS_MODELS.build(Config.fromfile(str(ROOT / 'configs/pretrain/r50_in1k.py')).model)
    out['r50_in1k'] = tmp_path_factory.mktemp('r50_in1k') / 'epoch_1.pth'
    torch.save({'meta': {}, 'state_dict': plain.state_dict()}, out['r50_in1k'])
    return out


def test_pretrained_checkpoint_tests_with_top1_top5(pretrained, imagenet, tmp_path):
    log = run('tools/test.py', 'configs/pretrain/ean_r50_in1k.py',
                   str(pretrained['ean_r50_in1k']), '--work-dir', str(tmp_path),
                   '--cfg-options', *tiny_pretrain_options(imagenet))
    assert re.search(r'accuracy/top1: [\d.]+ +accuracy/top5: [\d.]+', log), log[-2000:]


def backbone_tensors(checkpoint: Path):
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)['state_dict']
    return {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}


def with_trained_ean(checkpoint: Path, out: Path) -> Path:
    """A copy of ``checkpoint`` whose EAN tensors are far from their initial values.

    One SGD step leaves EAN-ResNet's EAN untouched (zero_init_residual zeroes its input), so a
    loader that skipped EAN's keys would go unnoticed without this."""
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    for key, value in ckpt['state_dict'].items():
        if '.ean.' in key:
            ckpt['state_dict'][key] = value + torch.randn_like(value)
    torch.save(ckpt, out)
    return out


@pytest.mark.parametrize('config,name', [
    ('configs/faster_rcnn_ean_r50_coco.py', 'ean_r50_in1k'),
    ('configs/ssdlite320_ean_mobilenext_coco.py', 'ean_mobilenext_in1k'),
    ('configs/faster_rcnn_r50_coco.py', 'r50_in1k'),
])
def test_detector_backbone_equals_checkpoint(config, name, pretrained, tmp_path):
    checkpoint = with_trained_ean(pretrained[name], tmp_path / f'{name}.pth')
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(ROOT / config))
    # the paper's protocol: the backbone of an ImageNet classifier trained here
    cfg.model.backbone.init_cfg.update(checkpoint=str(checkpoint), prefix='backbone.')
    detector = DET_MODELS.build(cfg.model)
    detector.init_weights()
    expected = backbone_tensors(checkpoint)
    got = detector.backbone.state_dict()
    assert set(got) == set(expected)
    assert sum('.ean.' in k for k in got) == {'ean_r50_in1k': 64, 'ean_mobilenext_in1k': 80,
                                              'r50_in1k': 0}[name]
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def test_mismatch_report_and_strict_error(pretrained):
    from ean_mm.models import EANResNet
    plain = pretrained['r50_in1k']  # a plain ResNet-50 checkpoint into an EAN backbone
    report = load_pretrained(EANResNet(depth=50), str(plain), prefix='backbone.', strict=True)
    assert len(report['plain_start']) == 16 and report['missing'] == []
    assert report['unexpected'] == [] and report['shape_mismatch'] == []

    # another group count: every EAN tensor of another shape, and the error lists them
    with pytest.raises(InputError, match=r'shape mismatch \(64\): layer1\.0\.ean\.alpha '
                                         r'\(4,\) vs \(8,\)'):
        load_pretrained(EANResNet(depth=50, ean_groups=32), str(pretrained['ean_r50_in1k']),
                        prefix='backbone.', strict=True)


def test_strict_mismatch_is_a_clean_tool_error(pretrained, imagenet, tmp_path):
    """An EAN-ResNet-50 checkpoint (G = 64), strict, into G = 32: one line, no stack dump."""
    proc = run_tool(
        'tools/train.py', 'configs/pretrain/ean_r50_in1k.py', '--work-dir', str(tmp_path),
        '--cfg-options', *tiny_pretrain_options(imagenet), 'model.backbone.ean_groups=32',
        'model.backbone.init_cfg.type=Pretrained', 'model.backbone.init_cfg.prefix=backbone.',
        f'model.backbone.init_cfg.checkpoint={pretrained["ean_r50_in1k"]}',
        'model.backbone.init_cfg.strict=True', check=False)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.count('error: ') == 1
    assert 'shape mismatch (64): layer1.0.ean.alpha (4,) vs (8,)' in \
        proc.stderr.split('error: ')[1]
