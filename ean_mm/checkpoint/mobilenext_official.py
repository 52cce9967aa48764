"""The MobileNeXt authors' ImageNet checkpoints (Zhou et al., ECCV 2020, their released code) in
ean_mm's layout.

Their layout, from repository ``yitu-opensource/MobileNeXt``, file
``mobilenext/codebase/models/mnext.py``, commit 94ac67d (the ImageNet ``MXNet``), and repository
``houqb/ssdlite-pytorch-mobilenext``, file ``ssd/modeling/backbone/mobilenext.py``, commit
e115b6a (the same ``features``, loaded into their SSDLite with ``strict=False``):
``features.0`` the stem ``Sequential(conv3x3, BN, ReLU6)``; ``features.1..20`` the sandglass
blocks, whose ``conv`` is one flat ``nn.Sequential`` in which every conv, BN and ReLU6 takes an
index of its own (``conv.0`` conv, ``conv.1`` BN, ``conv.2`` ReLU6 where there is one, ...);
``classifier = Sequential(Dropout, Linear)``: ``classifier.1``. Ours: ``conv1`` (stem),
``layerX.Y.conv.K.{conv,bn}``, and ``head.fc`` in an mmpretrain classifier.

Not exported by :mod:`ean_mm.checkpoint` (it imports the model): import this module.
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch

from ..models.backbones.mobilenext import MobileNeXt
from ..utils.errors import InputError
from .io import format_keys

__all__ = ['official_key_map', 'convert_mobilenext_official']

#: Widths tried when a checkpoint does not fit the one asked for (for the error message).
KNOWN_WIDTHS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


def _conv_bn(ours: str, conv: str, bn: str) -> Dict[str, str]:
    """Our ConvModule ``ours`` (``.conv``, ``.bn``) against their conv and BN prefixes."""
    mapping = {f'{ours}.conv.weight': f'{conv}.weight'}
    for name in ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'):
        mapping[f'{ours}.bn.{name}'] = f'{bn}.{name}'
    return mapping


def official_key_map(backbone: MobileNeXt) -> 'OrderedDict[str, str]':
    """Our backbone's state-dict key -> the authors' key, for every conv and BN tensor.

    Raises ``ValueError`` for a backbone with attention layers (their network has none).
    """
    if any(getattr(block, 'attention_name', None) for block in backbone.modules()):
        raise ValueError('the authors\' MobileNeXt has no attention layers; map the plain '
                         'MobileNeXt (EAN backbones load its checkpoint through Pretrained)')
    mapping = OrderedDict(_conv_bn('conv1', 'features.0.0', 'features.0.1'))
    index = 1
    for stage in backbone.layers:
        for j, block in enumerate(getattr(backbone, stage)):
            theirs, k = f'features.{index}.conv', 0
            for m, layer in enumerate(block.conv):
                mapping.update(_conv_bn(f'{stage}.{j}.conv.{m}', f'{theirs}.{k}',
                                        f'{theirs}.{k + 1}'))
                # conv, BN and, where the layer has one, ReLU6: one index each. (Our pw-pw
                # block defers its last ReLU6; theirs sits after it, at no later tensor.)
                k += 3 if layer.with_activation else 2
            index += 1
    return mapping


def _expected(widen_factor: float
              ) -> Tuple['OrderedDict[str, str]', Dict[str, tuple], int]:
    """Ours -> theirs and their key -> shape, both without the classifier, and the width of
    the classifier's input."""
    backbone = MobileNeXt(widen_factor=widen_factor, out_indices=(7, ))
    mapping = official_key_map(backbone)
    own = backbone.state_dict()
    shapes = {theirs: tuple(own[ours].shape) for ours, theirs in mapping.items()}
    return mapping, shapes, backbone.out_channels[-1]


def _fits(state: Mapping[str, torch.Tensor], shapes: Dict[str, tuple]) -> bool:
    return all(k in state and tuple(state[k].shape) == s for k, s in shapes.items())


def convert_mobilenext_official(state: Mapping[str, torch.Tensor], widen_factor: float = 1.0,
                                source: str = 'checkpoint'
                                ) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """The authors' classifier state dict as an mmpretrain ``ImageClassifier`` state dict
    (``backbone.*`` for :class:`MobileNeXt`, ``head.fc.{weight,bias}``), and notes.

    Raises:
        InputError: a key is missing, unexpected or of another shape for ``widen_factor``; the
            message names them and, where it can tell, what the file is instead.
    """
    mapping, shapes, width = _expected(widen_factor)
    head = {'classifier.1.weight': 'head.fc.weight', 'classifier.1.bias': 'head.fc.bias'}
    notes: List[str] = []
    missing = [k for k in shapes if k not in state]
    # Checkpoints of torch < 0.4.1 have no BN batch counters; they carry no information.
    counters = [k for k in missing if k.endswith('num_batches_tracked')]
    missing = [k for k in missing if k not in counters] + [k for k in head if k not in state]
    unexpected = [k for k in state if k not in shapes and k not in head]
    wrong = [f'{k} {tuple(state[k].shape)} vs {s}' for k, s in shapes.items()
             if k in state and tuple(state[k].shape) != s]
    fc, bias = state.get('classifier.1.weight'), state.get('classifier.1.bias')
    if fc is not None and (fc.dim() != 2 or fc.shape[1] != width):
        wrong.append(f'classifier.1.weight {tuple(fc.shape)} vs (num_classes, {width})')
    elif fc is not None and bias is not None and tuple(bias.shape) != (fc.shape[0], ):
        wrong.append(f'classifier.1.bias {tuple(bias.shape)} vs ({fc.shape[0]},)')
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f'missing ({len(missing)}): {format_keys(missing)}')
        if unexpected:
            problems.append(f'unexpected ({len(unexpected)}): {format_keys(unexpected)}')
        if wrong:
            problems.append(f'shape mismatch ({len(wrong)}): {format_keys(wrong)}')
        raise InputError(f'{source}: not the MobileNeXt authors\' {widen_factor}x ImageNet '
                         f'checkpoint: ' + '; '.join(problems) + '. ' + _diagnose(state,
                                                                                 widen_factor))
    converted: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for ours, theirs in mapping.items():
        if theirs in state:
            converted[f'backbone.{ours}'] = state[theirs]
        else:
            converted[f'backbone.{ours}'] = torch.tensor(0, dtype=torch.long)
    if counters:
        notes.append(f'{len(counters)} BN num_batches_tracked counters absent (torch < 0.4.1 '
                     'checkpoint): set to 0')
    for theirs, ours in head.items():
        converted[ours] = state[theirs]
    notes.append(f'{len(mapping) - len(counters)} backbone tensors and the classifier '
                 f'({state["classifier.1.weight"].shape[0]} classes) converted')
    return converted, notes


def _diagnose(state: Mapping[str, torch.Tensor], widen_factor: float) -> str:
    """What the file looks like instead, for the error message."""
    keys = list(state)
    if not any(k.startswith('features.') for k in keys):
        if any(k.startswith('backbone.') for k in keys):
            return ('It has backbone.* keys, the layout of an mmpretrain / ean_mm checkpoint, '
                    'which needs no conversion: load it with init_cfg=dict(type=\'Pretrained\', '
                    'checkpoint=...).')
        return 'It has no features.* keys: not a checkpoint of the authors\' code.'
    if 'features.18.0.weight' in state:
        return ('features.18.0 is a plain 1x1 conv: this is a MobileNetV2 checkpoint '
                '(torchvision layout), not MobileNeXt.')
    if 'features.1.conv.0.0.weight' in state:
        return ('Its blocks nest each conv + BN + ReLU6 as one module (features.i.conv.j.0 / '
                'conv.j.1): that is not the layout the authors\' code writes (every conv, BN and '
                'ReLU6 of a block takes its own index in one flat features.i.conv, e.g. '
                'features.1.conv.0.weight, features.1.conv.1.weight, features.1.conv.3.weight); '
                'convert the authors\' own file.')
    fits = [w for w in KNOWN_WIDTHS if w != widen_factor and _fits(state, _expected(w)[1])]
    if fits:
        return f'It fits width {fits[0]}x: pass --widen-factor {fits[0]}.'
    return 'Check that the file is the authors\' MobileNeXt and its width.'
