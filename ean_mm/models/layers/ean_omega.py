"""EAN's weight normalisation ``omega`` (paper Eqn 6) and the two forms of the EAN authors' code.

``omega = gamma * r`` with, over the ``K = C/G`` values of ``gamma``:

* ``'l2'``: ``r = 1 / sqrt(sum_k gamma_k^2 + eps)``, Eqn 6 as printed (the default);
* ``'l2_mean'``: ``r = 1 / sqrt(mean_k gamma_k^2 + eps)``, the authors' ``mode='l2'``;
* ``'l1_mean'``: ``r = 1 / (mean_k |gamma_k| + eps)``, the authors' ``mode='l1'``.

The authors' module: repository ``Lihahaah/EAN``, file ``ean_module.py``, commit 502bc79
(``weights = (weight.pow(2).mean() + eps).pow(0.5)`` and ``abs(weight).mean() + eps``).
"""
from typing import Optional

import torch

__all__ = ['OMEGA_FORMS', 'resolve_omega', 'omega_scale', 'omega_weights', 'omega_scale_grad']

#: The ``omega`` values :class:`~ean_mm.models.EAN` accepts.
OMEGA_FORMS = ('l2', 'l2_mean', 'l1_mean')

#: ``l2_reduction`` (the earlier argument), kept as an alias of ``omega``.
L2_REDUCTION_ALIAS = {'sum': 'l2', 'mean': 'l2_mean'}


def resolve_omega(omega: Optional[str], l2_reduction: Optional[str]) -> str:
    """The ``omega`` form from ``omega`` and its alias ``l2_reduction`` (either or neither).

    Raises ``ValueError`` for an unknown value or for the two naming different forms.
    """
    if l2_reduction is not None and l2_reduction not in L2_REDUCTION_ALIAS:
        raise ValueError(f"EAN: l2_reduction must be 'sum' (omega='l2') or 'mean' "
                         f"(omega='l2_mean'), got {l2_reduction!r}.")
    if omega is not None and omega not in OMEGA_FORMS:
        raise ValueError(f"EAN: omega must be 'l2' (paper Eqn 6), 'l2_mean' or 'l1_mean' (the "
                         f"EAN authors' mode='l2' / 'l1'), got {omega!r}.")
    alias = L2_REDUCTION_ALIAS.get(l2_reduction) if l2_reduction is not None else None
    if omega is not None and alias is not None and alias != omega:
        raise ValueError(f'EAN: omega={omega!r} and l2_reduction={l2_reduction!r} name '
                         f'different forms; pass omega only.')
    return omega or alias or 'l2'


def omega_scale(gamma: torch.Tensor, omega: str, eps: float) -> torch.Tensor:
    """``r`` of the module docstring (a scalar tensor): ``omega = gamma * r``."""
    if omega == 'l1_mean':
        return 1.0 / (gamma.abs().mean() + eps)
    squares = gamma * gamma
    return torch.rsqrt((squares.sum() if omega == 'l2' else squares.mean()) + eps)


def omega_weights(gamma: torch.Tensor, omega: str, eps: float) -> torch.Tensor:
    """``omega`` for the ``K`` values of ``gamma``."""
    return gamma * omega_scale(gamma, omega, eps)


def omega_scale_grad(gamma: torch.Tensor, r: torch.Tensor, omega: str) -> torch.Tensor:
    """``d r / d gamma_k`` for every ``k`` (for hand-written backward passes)."""
    k = gamma.numel()
    if omega == 'l1_mean':
        return -(r * r) * torch.sign(gamma) / k
    return -(1.0 if omega == 'l2' else 1.0 / k) * r ** 3 * gamma
