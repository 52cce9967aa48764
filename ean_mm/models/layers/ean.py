"""EAN: Efficient Attention module guided by Normalization (Li, Li & Wen, AAAI 2024)."""
from typing import Literal, Optional

import torch
import torch.nn as nn
from ...registry import MODELS

from .ean_fused import ean_fused


@MODELS.register_module()
class EAN(nn.Module):
    """Efficient Attention module guided by Normalization (paper Eqns 5-9).

    ``X`` ``(N, C, H, W)`` is split along channels into ``G`` contiguous groups ``X_k`` of
    ``C/G`` channels, each through the same attention generation unit:

    * Eqn 5: ``GN(X_k) = gamma * (X_k - mu) / sqrt(sigma^2 + eps) + beta``, a GroupNorm with
      ``C/G`` groups of one channel (statistics over ``H x W``), ``gamma, beta in R^{C/G}``;
    * Eqn 6: ``omega = gamma / sqrt(sum_i gamma_i^2 + eps_l2)``;
    * Eqn 7: ``X~_k = omega * GN(X_k)``;
    * Eqn 8: ``A_k = sigmoid(alpha * X~_k + delta)``, ``alpha, delta in R^{C/G}`` starting at 0
      (a fresh layer returns ``0.5 * X``);
    * Eqn 9: ``Y_k = A_k * X_k``, concatenated back in order.

    Eqn 6 sums the squares as printed (``l2_reduction='sum'``); ``'mean'`` divides by the root
    of their mean instead, as a public implementation does. ``implementation='fused'`` computes
    the same with one reduction and one elementwise pass (:mod:`.ean_fused`); ``'reference'``
    is the equation-by-equation path (:meth:`attention`). Keys: ``gn.weight`` (gamma),
    ``gn.bias`` (beta), ``alpha``, ``delta``, ``C/G`` values each.

    Args:
        in_channels: ``C``.
        groups: ``G``; must divide ``in_channels`` (paper: 64 for ResNet, 8 for MobileNeXt).
        eps: GroupNorm ``epsilon`` (Eqn 5).
        l2_eps: ``varepsilon`` of Eqn 6.
        l2_reduction: ``'sum'`` (Eqn 6) or ``'mean'``.
        implementation: ``'fused'`` (default) or ``'reference'``.
        compile: Run the fused kernels through ``torch.compile`` (eager fallback with a warning);
            ``None`` reads ``EAN_COMPILE=1``. Ignored by ``'reference'``.
    """

    _abbr_ = 'ean'  # module name given by mmcv's build_plugin_layer: ``layerX.Y.ean``

    def __init__(self,
                 in_channels: int,
                 groups: int = 64,
                 eps: float = 1e-5,
                 l2_eps: float = 1e-5,
                 l2_reduction: Literal['sum', 'mean'] = 'sum',
                 implementation: Literal['fused', 'reference'] = 'fused',
                 compile: Optional[bool] = None) -> None:
        super().__init__()
        if not isinstance(groups, int) or groups < 1 or in_channels % groups != 0:
            raise ValueError(
                f'EAN: groups={groups} must be a positive integer that divides '
                f'in_channels={in_channels}; choose a divisor of {in_channels} '
                f'(e.g. {_nearest_divisor(in_channels, groups)}).')
        if l2_reduction not in ('sum', 'mean'):
            raise ValueError(f"EAN: l2_reduction must be 'sum' (paper Eqn 6) or 'mean', "
                             f'got {l2_reduction!r}.')
        if implementation not in ('fused', 'reference'):
            raise ValueError(f"EAN: implementation must be 'fused' or 'reference', "
                             f'got {implementation!r}.')
        self.in_channels = in_channels
        self.groups = groups
        self.l2_eps = l2_eps
        self.l2_reduction = l2_reduction
        self.implementation = implementation
        self.use_compile = compile  # not ``self.compile``: that is nn.Module.compile()
        group_channels = in_channels // groups
        # One GroupNorm over a group's C/G channels, one channel per norm group (Eqn 5).
        self.gn = nn.GroupNorm(group_channels, group_channels, eps=eps)
        self.alpha = nn.Parameter(torch.zeros(group_channels))
        self.delta = nn.Parameter(torch.zeros(group_channels))

    def l2_weights(self) -> torch.Tensor:
        """``omega`` of Eqn 6, one value per channel of a group."""
        gamma = self.gn.weight
        squares = gamma.pow(2)
        total = squares.sum() if self.l2_reduction == 'sum' else squares.mean()
        return gamma / torch.sqrt(total + self.l2_eps)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The attention mask ``A`` (Eqns 5-8) for ``x`` of shape ``(N, C, H, W)``."""
        n, c, h, w = x.shape
        group_channels = c // self.groups
        grouped = x.reshape(n * self.groups, group_channels, h, w)  # Grouping
        normed = self.gn(grouped)  # Eqn 5
        omega = self.l2_weights().view(1, group_channels, 1, 1)  # Eqn 6
        x_tilde = omega * normed  # Eqn 7
        mask = torch.sigmoid(self.alpha.view(1, -1, 1, 1) * x_tilde
                             + self.delta.view(1, -1, 1, 1))  # Eqn 8
        return mask.reshape(n, c, h, w)  # Aggregation keeps group order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'EAN expects (N, {self.in_channels}, H, W) input, '
                             f'got shape {tuple(x.shape)}.')
        if self.implementation == 'fused':
            return ean_fused(x, self.gn.weight, self.gn.bias, self.alpha, self.delta,
                             self.groups, self.gn.eps, self.l2_eps, self.l2_reduction,
                             self.use_compile)
        return x * self.attention(x).to(x.dtype)  # Eqn 9

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, groups={self.groups}, '
                f'l2_reduction={self.l2_reduction!r}, implementation={self.implementation!r}')


def _nearest_divisor(channels: int, groups) -> int:
    """The divisor of ``channels`` closest to ``groups`` (for the error message)."""
    target = groups if isinstance(groups, int) and groups > 0 else 1
    divisors = [d for d in range(1, channels + 1) if channels % d == 0]
    return min(divisors, key=lambda d: (abs(d - target), d))


def set_ean_implementation(model: nn.Module, implementation: str,
                           use_compile: Optional[bool] = None) -> int:
    """Set every :class:`EAN` in ``model`` to ``implementation`` ('fused' or 'reference') and
    ``compile``; returns how many there are."""
    if implementation not in ('fused', 'reference'):
        raise ValueError(f"implementation must be 'fused' or 'reference', got {implementation!r}")
    layers = [m for m in model.modules() if isinstance(m, EAN)]
    for layer in layers:
        layer.implementation = implementation
        layer.use_compile = use_compile
    return len(layers)
