"""EAN's weight normalisation ``omega`` (paper Eqn 6) and the two forms of the EAN authors' code.

``omega = gamma / d`` with, over the ``K = C/G`` values of ``gamma``:

* ``'l2'``: ``d = sqrt(sum_k gamma_k^2 + eps)``, Eqn 6 as printed (the default);
* ``'l2_mean'``: ``d = sqrt(mean_k gamma_k^2 + eps)``, the authors' ``mode='l2'``;
* ``'l1_mean'``: ``d = mean_k |gamma_k| + eps``, the authors' ``mode='l1'``.

The authors' module: repository ``Lihahaah/EAN``, file ``ean_module.py``, commit 502bc79
(``weights = (weight.pow(2).mean() + eps).pow(0.5)`` and ``abs(weight).mean() + eps``).
"""
from typing import Optional

import torch

__all__ = ['OMEGA_FORMS', 'resolve_omega', 'omega_norm', 'omega_weights']

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


def omega_norm(gamma: torch.Tensor, omega: str, eps: float) -> torch.Tensor:
    """The divisor (a scalar tensor): ``omega = gamma / omega_norm``."""
    if omega == 'l1_mean':
        return gamma.abs().mean() + eps
    squares = gamma.pow(2)
    return torch.sqrt((squares.sum() if omega == 'l2' else squares.mean()) + eps)


def omega_weights(gamma: torch.Tensor, omega: str, eps: float) -> torch.Tensor:
    """``omega`` for the ``K`` values of ``gamma``."""
    # a division, not gamma * rsqrt(...): torch's TorchScript ONNX exporter folds the latter
    # into a graph onnxruntime refuses (a Mul input that no node produces; torch 2.13)
    return gamma / omega_norm(gamma, omega, eps)
