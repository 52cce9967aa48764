"""EAN-CSPNeXt (RTMDet's backbone with EAN): mmdet's CSPNeXt plus one EAN per CSPNeXtBlock at
the paper's place, started exactly as the plain network from the RTMDet-s config's public
ImageNet checkpoint."""
import copy

import pytest
import torch
from conftest import ROOT
from detection_runs import CSPNEXT_S, write_cspnext_s_checkpoint
from mmdet.models.backbones import CSPNeXt
from mmdet.models.layers.se_layer import ChannelAttention
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import init_default_scope

from ean_mm.checkpoint import load_pretrained
from ean_mm.checkpoint import pretrained as pretrained_mod
from ean_mm.models import EAN, AttentionCSPNeXt, AttentionCSPNeXtBlock, EANCSPNeXt
from ean_mm.utils import InputError

RTMDET_S = dict(deepen_factor=0.33, widen_factor=0.5)  # rtmdet_s_8xb32-300e_coco.py


@pytest.fixture(scope='module')
def cspnext_home(tmp_path_factory):
    """A TORCH_HOME whose cache holds the CSPNeXt-s ImageNet checkpoint the config names."""
    home = tmp_path_factory.mktemp('torch_home_cspnext')
    write_cspnext_s_checkpoint(home / 'hub' / 'checkpoints' / CSPNEXT_S)
    return home


def config_backbone(config: str) -> dict:
    return copy.deepcopy(Config.fromfile(str(ROOT / config)).model.backbone)


def build(cfg: dict) -> torch.nn.Module:
    init_default_scope('mmdet')
    # Not distributed: SyncBN as BN, as mmengine's Runner and mmdet's init_detector revert it.
    model = revert_sync_batchnorm(MODELS.build(cfg))
    model.init_weights()
    return model


def test_plain_start_from_the_rtmdet_checkpoint_is_exact(cspnext_home, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(cspnext_home))
    logged = []
    monkeypatch.setattr(pretrained_mod, 'print_log', lambda msg, **kw: logged.append(msg))
    ean_cfg, plain_cfg = (config_backbone('configs/rtmdet_s_ean_coco.py'),
                          config_backbone('configs/rtmdet_s_coco.py'))
    assert ean_cfg.init_cfg == plain_cfg.init_cfg  # the public URL, keys backbone.*
    assert ean_cfg.init_cfg.checkpoint.endswith('/' + CSPNEXT_S)
    ean, plain = build(ean_cfg), build(plain_cfg)
    assert type(ean) is EANCSPNeXt and type(plain) is CSPNeXt
    layers = [m for m in ean.modules() if isinstance(m, EAN)]
    assert len(layers) == 6  # RTMDet-s: 1 + 2 + 2 + 1 blocks
    assert 'plain checkpoint, 6 EAN layers start as the plain network' in logged[0]
    x = torch.randn(2, 3, 64, 64)
    for mode in (False, True):  # eval, then train (batch statistics)
        ean.train(mode), plain.train(mode)
        outs = ean(x)
        want = plain(x)
        assert len(outs) == len(want) == 3
        for a, b in zip(outs, want):
            assert torch.equal(a, b)
    sum(o.pow(2).sum() for o in outs).backward()  # EAN learns its attention from here
    assert all(torch.count_nonzero(m.alpha.grad) > 0 for m in layers)
    assert all(torch.count_nonzero(m.delta.grad) > 0 for m in layers)


def test_keys_are_cspnext_keys_plus_4C_over_G_per_block():
    plain = CSPNeXt(**RTMDET_S)
    ean = EANCSPNeXt(**RTMDET_S)
    plain_keys, ean_keys = set(plain.state_dict()), set(ean.state_dict())
    assert plain_keys < ean_keys
    extra = sorted(ean_keys - plain_keys)
    blocks = [(n, m) for n, m in ean.named_modules() if isinstance(m, AttentionCSPNeXtBlock)]
    assert [n for n, _ in blocks] == ['stage1.1.blocks.0', 'stage2.1.blocks.0',
                                      'stage2.1.blocks.1', 'stage3.1.blocks.0',
                                      'stage3.1.blocks.1', 'stage4.2.blocks.0']
    assert extra == sorted(f'{n}.ean.{t}' for n, _ in blocks
                           for t in ('gn.weight', 'gn.bias', 'alpha', 'delta'))
    widths = [m.conv2.pointwise_conv.conv.out_channels for _, m in blocks]
    assert widths == [32, 64, 64, 128, 128, 256]
    added = sum(p.numel() for p in ean.parameters()) - sum(p.numel() for p in plain.parameters())
    assert added == sum(4 * c // 8 for c in widths) == 336
    # RTMDet's channel attention is kept, one per CSPLayer
    assert all(isinstance(getattr(ean, f'stage{i}')[-1].attention, ChannelAttention)
               for i in range(1, 5))


def test_ean_sits_after_the_pointwise_norm_before_act_and_add():
    block = AttentionCSPNeXtBlock(16, 16, 1.0, True, attention_cfg=dict(type='EAN', groups=4))
    with torch.no_grad():
        for p in block.ean.parameters():
            p.normal_()  # away from the fresh layer's 0.5 x
    block.eval()
    x = torch.randn(2, 16, 9, 9)
    pw = block.conv2.pointwise_conv
    with torch.no_grad():
        hidden = pw.conv(block.conv2.depthwise_conv(block.conv1(x)))
        want = pw.activate(block.ean(pw.norm(hidden))) + x
        after_act = block.ean(pw.activate(pw.norm(hidden))) + x
        got = block(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got, after_act, atol=1e-3)
    assert block.attention_norm == 'conv2.pointwise_conv.bn'


def test_replace_channel_attention_option(tmp_path):
    ean = AttentionCSPNeXt(attention_cfg=dict(type='EAN', groups=8),
                           replace_channel_attention=True, **RTMDET_S)
    for i, width in zip(range(1, 5), (64, 128, 256, 512)):  # 2 x mid channels
        csp = getattr(ean, f'stage{i}')[-1]
        assert isinstance(csp.attention, EAN) and csp.attention.in_channels == width
    assert not any(isinstance(m, ChannelAttention) for m in ean.modules())
    ean.eval()
    assert ean(torch.randn(1, 3, 64, 64))[-1].shape == (1, 512, 2, 2)
    path = tmp_path / 'cspnext.pth'
    write_cspnext_s_checkpoint(path)
    with pytest.raises(InputError, match=r'EAN layer stage1\.1\.attention: its input is not the '
                                         'output of an affine norm layer'):
        load_pretrained(ean, str(path), prefix='backbone.')
    with pytest.raises(ValueError, match='with channel_attention=False there is none'):
        AttentionCSPNeXt(attention_cfg=dict(type='EAN', groups=8), channel_attention=False,
                         replace_channel_attention=True, **RTMDET_S)
    with pytest.raises(ValueError, match='needs an attention_cfg'):
        AttentionCSPNeXt(replace_channel_attention=True, **RTMDET_S)


def test_group_count_that_does_not_fit_names_the_widths():
    with pytest.raises(ValueError, match=r'EANCSPNeXt: EAN groups=64 .*\(32, 64, 128, 256\); it '
                                         r'does not divide 32\. Choose one that divides them all: '
                                         r'16 or 32'):
        EANCSPNeXt(ean_groups=64, **RTMDET_S)
    assert EANCSPNeXt(ean_groups=8, deepen_factor=0.167, widen_factor=0.375)  # tiny: 24..192
    with pytest.raises(TypeError, match='use ean_mm.AttentionCSPNeXt'):
        EANCSPNeXt(attention_cfg=dict(type='SE'))
