"""The MobileNeXt authors' network written out independently of ean_mm, from the facts of their
released code: its checkpoint keys and shapes, and a functional forward over those tensors.

Sources read (2026-12-02):

* ImageNet classifier: repository ``yitu-opensource/MobileNeXt``, file
  ``mobilenext/codebase/models/mnext.py``, commit 94ac67d (class ``MXNet``).
* SSDLite backbone: repository ``houqb/ssdlite-pytorch-mobilenext``, file
  ``ssd/modeling/backbone/mobilenext.py``, commit e115b6a (class ``MobileNeXt``; the same
  ``features``, no classifier, loaded from the ImageNet file with ``strict=False``).

Facts used:

* ``features.0`` = ``Sequential(Conv2d 3x3 s2, BatchNorm2d, ReLU6)``.
* ``features.1..20`` are ``SGBlock``s whose ``conv`` is ONE flat ``nn.Sequential``: every
  ``Conv2d``, ``BatchNorm2d`` and ``ReLU6`` takes an index of its own (ReLU6 holds no tensor).
  Forms, by the order of the ``if`` chain: ``t == 2`` -> dw, BN, ReLU6, pw, BN, pw, BN, ReLU6,
  dw(stride), BN; ``inp != oup``, stride 1, not ``keep_3x3`` -> pw, BN, pw, BN, ReLU6;
  ``inp != oup``, stride 2, not ``keep_3x3`` -> pw, BN, pw, BN, ReLU6, dw(stride 2), BN;
  otherwise dw, BN, ReLU6, pw, BN, pw, BN, ReLU6, dw, BN, with the identity shortcut unless
  ``keep_3x3``. ``keep_3x3 = (n == 1 and s == 1)`` for a stage's first block only.
* Reduced width ``hidden = inp // t``, and where ``hidden < oup / 6``:
  ``_make_divisible(ceil(oup / 6), 16)``. Widths ``_make_divisible(c * width, 8)``, 1280 kept
  for ``width < 1``; stem ``_make_divisible(32 * width, 8)``.
* ``classifier = Sequential(Dropout(0.2), Linear(1280, num_classes))`` after a global average
  pool: keys ``classifier.1.{weight,bias}``. 446 entries in all for 1.0x.
* SSDLite features: ``features[13].conv[:5]`` (576 channels, stride 16) and
  ``features[20].conv[:8]`` (1280 channels, stride 32).
"""
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

SETTINGS = [(2, 96, 1, 2), (6, 144, 1, 1), (6, 192, 3, 2), (6, 288, 3, 2), (6, 384, 4, 1),
            (6, 576, 4, 2), (6, 960, 3, 1), (6, 1280, 1, 1)]

# A convolution: (kind 'dw' or 'pw', in channels, out channels, stride, ReLU6 after its BN?)
Layer = Tuple[str, int, int, int, bool]
# An entry of a block's flat ``conv`` Sequential: ('conv', Layer), ('bn', channels), ('relu6', 0)
Entry = Tuple[str, object]


def make_divisible(v: float, divisor: int) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _block_layers(inp: int, oup: int, stride: int, t: int, keep_3x3: bool
                  ) -> Tuple[List[Layer], bool]:
    hidden = inp // t
    if hidden < oup / 6:
        hidden = make_divisible(math.ceil(oup / 6), 16)
    reduce_, expand = ('pw', inp, hidden, 1, False), ('pw', hidden, oup, 1, True)
    if t == 2:
        return [('dw', inp, inp, 1, True), reduce_, expand, ('dw', oup, oup, stride, False)], \
            False
    if inp != oup and stride == 1 and not keep_3x3:
        return [reduce_, expand], False
    if inp != oup and stride == 2 and not keep_3x3:
        return [reduce_, expand, ('dw', oup, oup, stride, False)], False
    return [('dw', inp, inp, 1, True), reduce_, expand, ('dw', oup, oup, 1, False)], \
        not keep_3x3


def blocks(width: float = 1.0) -> List[Tuple[List[Layer], bool]]:
    """Every sandglass block ``features.1..20``: its convolutions and whether it has the
    identity shortcut."""
    out, inp = [], make_divisible(32 * width, 8)
    for t, c, n, s in SETTINGS:
        oup = 1280 if c == 1280 and width < 1 else make_divisible(c * width, 8)
        out.append(_block_layers(inp, oup, s, t, keep_3x3=n == 1 and s == 1))
        for _ in range(n - 1):
            out.append(_block_layers(oup, oup, 1, t, keep_3x3=False))
        inp = oup
    return out


def entries(layers: List[Layer]) -> List[Entry]:
    """A block's ``conv`` Sequential, entry by entry (the index of an entry is its key)."""
    seq: List[Entry] = []
    for layer in layers:
        seq += [('conv', layer), ('bn', layer[2])] + ([('relu6', 0)] if layer[4] else [])
    return seq


def _bn(prefix: str, c: int, sd: Dict[str, torch.Tensor], g: torch.Generator) -> None:
    sd[f'{prefix}.weight'] = torch.rand(c, generator=g) + 0.5
    sd[f'{prefix}.bias'] = torch.randn(c, generator=g) * 0.1
    sd[f'{prefix}.running_mean'] = torch.randn(c, generator=g) * 0.1
    sd[f'{prefix}.running_var'] = torch.rand(c, generator=g) + 0.5
    sd[f'{prefix}.num_batches_tracked'] = torch.tensor(7)


def official_state_dict(width: float = 1.0, num_classes: int = 1000,
                        seed: int = 0) -> 'OrderedDict[str, torch.Tensor]':
    """Random tensors under every key of the authors' classifier, with their shapes, in the
    order ``nn.Module.state_dict`` gives them."""
    g = torch.Generator().manual_seed(seed)
    sd: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    stem = make_divisible(32 * width, 8)
    sd['features.0.0.weight'] = torch.randn(stem, 3, 3, 3, generator=g) * 0.3
    _bn('features.0.1', stem, sd, g)
    for i, (layers, _) in enumerate(blocks(width), start=1):
        for j, (kind, what) in enumerate(entries(layers)):
            prefix = f'features.{i}.conv.{j}'
            if kind == 'conv':
                conv, cin, cout = what[:3]
                shape = (cout, 1, 3, 3) if conv == 'dw' else (cout, cin, 1, 1)
                sd[f'{prefix}.weight'] = torch.randn(shape, generator=g) / math.sqrt(
                    shape[1] * shape[2] * shape[3])
            elif kind == 'bn':
                _bn(prefix, what, sd, g)
    last = blocks(width)[-1][0][-1][2]
    sd['classifier.1.weight'] = torch.randn(num_classes, last, generator=g) * 0.05
    sd['classifier.1.bias'] = torch.randn(num_classes, generator=g) * 0.05
    return sd


def _run(sd: Dict[str, torch.Tensor], prefix: str, seq: List[Entry], x: torch.Tensor,
         stop: Optional[int] = None) -> torch.Tensor:
    """``Sequential[:stop]`` of entries under ``prefix`` in eval mode."""
    for j, (kind, what) in enumerate(seq[:stop]):
        key = f'{prefix}.{j}'
        if kind == 'conv':
            conv, cin, _, stride, _ = what
            weight = sd[f'{key}.weight']
            x = F.conv2d(x, weight, stride=stride, padding=weight.shape[-1] // 2,
                         groups=cin if conv == 'dw' else 1)
        elif kind == 'bn':
            x = F.batch_norm(x, sd[f'{key}.running_mean'], sd[f'{key}.running_var'],
                             sd[f'{key}.weight'], sd[f'{key}.bias'], training=False, eps=1e-5)
        else:
            x = F.relu6(x)
    return x


_STEM: List[Entry] = [('conv', ('full', 3, 0, 2, True)), ('bn', 0), ('relu6', 0)]


def official_features(sd: Dict[str, torch.Tensor], x: torch.Tensor, width: float = 1.0,
                      taps: Dict[int, int] = None) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """``features(x)`` and, for each ``{block index: k}`` in ``taps``, that block's
    ``conv[:k](input)``."""
    x = _run(sd, 'features.0', _STEM, x)
    tapped = []
    for i, (layers, shortcut) in enumerate(blocks(width), start=1):
        seq = entries(layers)
        if taps and i in taps:
            tapped.append(_run(sd, f'features.{i}.conv', seq, x, taps[i]))
        out = _run(sd, f'features.{i}.conv', seq, x)
        x = x + out if shortcut else out
    return x, tapped


def official_forward(sd: Dict[str, torch.Tensor], x: torch.Tensor,
                     width: float = 1.0) -> torch.Tensor:
    """Logits of the authors' classifier (eval mode) from its state dict."""
    x, _ = official_features(sd, x, width)
    return F.linear(x.mean(dim=(2, 3)), sd['classifier.1.weight'], sd['classifier.1.bias'])


def official_ssdlite_taps(sd: Dict[str, torch.Tensor], x: torch.Tensor) -> List[torch.Tensor]:
    """The two backbone maps the authors' SSDLite takes: ``features[13].conv[:5]`` and
    ``features[20].conv[:8]``."""
    return official_features(sd, x, taps={13: 5, 20: 8})[1]
