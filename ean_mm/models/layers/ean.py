"""EAN: Efficient Attention module guided by Normalization (Li, Li & Wen, AAAI 2024)."""
from typing import Literal, Optional

import torch
import torch.nn as nn
from mmengine.registry import MODELS

from .ean_fused import ean_fused


@MODELS.register_module()
class EAN(nn.Module):
    """Efficient Attention module guided by Normalization (paper Eqns 5-9).

    The input ``X`` of shape ``(N, C, H, W)`` is split along channels into ``G`` contiguous groups
    ``X_k`` of ``C/G`` channels (Grouping). Each group goes through the Attention Generation unit,
    whose parameters are shared by all groups:

    * Eqn 5, GroupNorm with ``C/G`` groups of one channel each: every channel is standardised
      with the mean and variance of its own ``H x W`` plane, then scaled and shifted by
      ``gamma, beta in R^{C/G}``: ``GN(X_k) = gamma * (X_k - mu) / sqrt(sigma^2 + eps) + beta``.
    * Eqn 6, L2 Norm of the scales: ``omega = gamma / sqrt(sum_i gamma_i^2 + eps_l2)``.
    * Eqn 7: ``X~_k = omega * GN(X_k)`` (channel-wise).
    * Eqn 8, Adaptation: ``A_k = sigmoid(alpha * X~_k + delta)`` with ``alpha, delta in R^{C/G}``
      initialised to 0, so a fresh layer returns ``0.5 * X``.
    * Eqn 9: ``Y_k = A_k * X_k``; the ``Y_k`` are concatenated back in order (Aggregation).

    Reading of Eqn 6: the paper writes the *sum* of squares, which is the default
    (``l2_reduction='sum'``). A public implementation of the paper divides by the root of the *mean*
    of squares instead (``omega = gamma / sqrt(mean(gamma^2) + eps)``, i.e. ``sqrt(C/G)`` times
    larger); ``l2_reduction='mean'`` selects it.

    Implementations (same mathematics, same parameters):

    * ``'fused'`` (default, :mod:`ean_mm.models.layers.ean_fused`): one mean/variance reduction per
      ``(sample, channel)``; gamma, beta, omega, alpha and delta folded into one scale and one
      shift per ``(sample, channel)``; one elementwise pass ``Y = X * sigmoid(scale*X + shift)``.
      Its custom autograd function saves only ``X`` and the per-``(sample, channel)`` statistics
      and recomputes the mask in backward (first-order gradients only). Float16/bfloat16 inputs
      (autocast) are computed in float32 and returned in the input dtype.
    * ``'reference'``: the equation-by-equation path below (:meth:`attention`), kept readable
      for checking the fused one.

    Checkpoint format (stable, identical for both): ``gn.weight`` (gamma), ``gn.bias`` (beta),
    ``alpha``, ``delta``, each a vector of ``C/G`` values.

    Args:
        in_channels: Number of input channels ``C``.
        groups: Number of groups ``G``; must divide ``in_channels``. The paper recommends 64 for
            large models (ResNet) and 8 for lightweight ones (MobileNeXt).
        eps: ``epsilon`` of GroupNorm (Eqn 5).
        l2_eps: ``varepsilon`` of the L2 normalisation (Eqn 6).
        l2_reduction: ``'sum'`` (paper, Eqn 6) or ``'mean'`` (the public implementation's).
        implementation: ``'fused'`` (default) or ``'reference'`` (equation-by-equation, for
            checking); see above.
        compile: Run the fused kernels through ``torch.compile`` (falls back to eager with a
            warning if compilation fails). ``None`` (default) reads the environment variable
            ``EAN_COMPILE`` (``1`` enables). Ignored by ``'reference'``.

    Usable stand-alone (``dict(type='EAN', in_channels=C, groups=G)``) or as an mmcv plugin in
    mmdet's ResNet / ResNeXt bottlenecks, where the block passes ``in_channels``::

        plugins=[dict(cfg=dict(type='EAN', groups=64), position='after_conv3')]
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
