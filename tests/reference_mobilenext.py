"""The MobileNeXt authors' network written out independently of ean_mm (from the facts of their
released code): their checkpoint keys and shapes, and a functional forward over those tensors."""
import math
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F

SETTINGS = [(2, 96, 1, 2), (6, 144, 1, 1), (6, 192, 3, 2), (6, 288, 3, 2), (6, 384, 4, 1),
            (6, 576, 4, 2), (6, 960, 3, 1), (6, 1280, 1, 1)]

# A layer: (kind 'dw' or 'pw', in channels, out channels, stride, ReLU6 after BN?)
Layer = Tuple[str, int, int, int, bool]


def make_divisible(v: float, divisor: int) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def blocks(width: float = 1.0) -> List[Tuple[List[Layer], bool]]:
    """Every sandglass block: its layers and whether it has the identity shortcut."""
    out, inp = [], make_divisible(32 * width, 8)
    for t, c, n, s in SETTINGS:
        oup = 1280 if c == 1280 and width < 1 else make_divisible(c * width, 8)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = inp // t
            if hidden < oup / 6:
                hidden = make_divisible(math.ceil(oup / 6), 16)
            keep = t == 2 or inp == oup or (n == 1 and stride == 1)
            layers: List[Layer] = [('dw', inp, inp, 1, True)] if keep else []
            layers += [('pw', inp, hidden, 1, False), ('pw', hidden, oup, 1, True)]
            if keep or stride == 2:
                layers.append(('dw', oup, oup, stride, False))
            out.append((layers, stride == 1 and inp == oup))
            inp = oup
    return out


def _bn(prefix: str, c: int, sd: Dict[str, torch.Tensor], g: torch.Generator) -> None:
    sd[f'{prefix}.weight'] = torch.rand(c, generator=g) + 0.5
    sd[f'{prefix}.bias'] = torch.randn(c, generator=g) * 0.1
    sd[f'{prefix}.running_mean'] = torch.randn(c, generator=g) * 0.1
    sd[f'{prefix}.running_var'] = torch.rand(c, generator=g) + 0.5
    sd[f'{prefix}.num_batches_tracked'] = torch.tensor(7)


def _layer_keys(prefix: str, j: int, layer: Layer) -> Tuple[str, str, int]:
    """(conv prefix, BN prefix, next index): conv+BN+ReLU6 is one index, conv+BN two."""
    if layer[4]:
        return f'{prefix}.{j}.0', f'{prefix}.{j}.1', j + 1
    return f'{prefix}.{j}', f'{prefix}.{j + 1}', j + 2


def official_state_dict(width: float = 1.0, num_classes: int = 1000,
                        seed: int = 0) -> 'OrderedDict[str, torch.Tensor]':
    """Random tensors under every key of the authors' classifier, with their shapes."""
    g = torch.Generator().manual_seed(seed)
    sd: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    stem = make_divisible(32 * width, 8)
    sd['features.0.0.weight'] = torch.randn(stem, 3, 3, 3, generator=g) * 0.3
    _bn('features.0.1', stem, sd, g)
    for i, (layers, _) in enumerate(blocks(width), start=1):
        j = 0
        for layer in layers:
            conv, bn, j = _layer_keys(f'features.{i}.conv', j, layer)
            kind, cin, cout = layer[:3]
            shape = (cout, 1, 3, 3) if kind == 'dw' else (cout, cin, 1, 1)
            sd[f'{conv}.weight'] = torch.randn(shape, generator=g) * (1.0 / math.sqrt(
                shape[1] * shape[2] * shape[3]))
            _bn(bn, cout, sd, g)
    last = blocks(width)[-1][0][-1][2]
    sd['classifier.1.weight'] = torch.randn(num_classes, last, generator=g) * 0.05
    sd['classifier.1.bias'] = torch.randn(num_classes, generator=g) * 0.05
    return sd


def _conv_bn(x, sd, conv, bn, stride, groups, act):
    weight = sd[f'{conv}.weight']
    x = F.conv2d(x, weight, stride=stride, padding=weight.shape[-1] // 2, groups=groups)
    x = F.batch_norm(x, sd[f'{bn}.running_mean'], sd[f'{bn}.running_var'], sd[f'{bn}.weight'],
                     sd[f'{bn}.bias'], training=False, eps=1e-5)
    return F.relu6(x) if act else x


def official_forward(sd: Dict[str, torch.Tensor], x: torch.Tensor,
                     width: float = 1.0) -> torch.Tensor:
    """Logits of the authors' network (eval mode) from its state dict."""
    x = _conv_bn(x, sd, 'features.0.0', 'features.0.1', 2, 1, True)
    for i, (layers, shortcut) in enumerate(blocks(width), start=1):
        out, j = x, 0
        for layer in layers:
            conv, bn, j = _layer_keys(f'features.{i}.conv', j, layer)
            out = _conv_bn(out, sd, conv, bn, layer[3], layer[1] if layer[0] == 'dw' else 1,
                           layer[4])
        x = x + out if shortcut else out
    return F.linear(x.mean(dim=(2, 3)), sd['classifier.1.weight'], sd['classifier.1.bias'])
