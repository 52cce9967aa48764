"""EAN's ``K``-vectors ``ag = a * gamma``, ``sh0 = delta + a * beta`` (``a = alpha * omega``,
Eqns 6-8) in one Triton launch, and their gradients in one more: on CUDA these replace about
eight small PyTorch launches forward and ten backward per layer. Likewise a frozen norm's
per-channel affine step ``A = weight / sqrt(var + eps)``, ``B = bias - mean * A`` (five).

With ``d`` the ``omega`` divisor (:mod:`.ean_omega`), upstream ``g_ag``, ``g_sh0`` and
``q = g_ag * gamma + g_sh0 * beta`` (the gradient of ``a``):
``d delta = g_sh0``, ``d beta = g_sh0 * a``, ``d alpha = q * omega``, and
``d gamma = g_ag * a + r / d - (sum_i r_i gamma_i) / d^2 * dd/dgamma`` with ``r = q * alpha``;
``dd/dgamma_j = gamma_j / d`` (``'l2'``), ``gamma_j / (K d)`` (``'l2_mean'``),
``sign(gamma_j) / K`` (``'l1_mean'``). Float32 arithmetic.
"""
from typing import Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from .ean_omega import OMEGA_FORMS

__all__ = ['triton_kernel_vectors', 'triton_frozen_affine']


@triton.jit
def _divisor(gamma, mask, K, eps, OMEGA: tl.constexpr):
    if OMEGA == 2:  # l1_mean
        return tl.sum(tl.where(mask, tl.abs(gamma), 0.), axis=0) / K + eps
    sq = tl.sum(tl.where(mask, gamma * gamma, 0.), axis=0)
    if OMEGA == 1:  # l2_mean
        sq = sq / K
    return tl.sqrt(sq + eps)


@triton.jit
def _vectors_kernel(gamma_ptr, beta_ptr, alpha_ptr, delta_ptr, ag_ptr, sh0_ptr, K, eps,
                    OMEGA: tl.constexpr, BK: tl.constexpr):
    k = tl.arange(0, BK)
    mask = k < K
    gamma = tl.load(gamma_ptr + k, mask=mask, other=0.).to(tl.float32)
    beta = tl.load(beta_ptr + k, mask=mask, other=0.).to(tl.float32)
    alpha = tl.load(alpha_ptr + k, mask=mask, other=0.).to(tl.float32)
    delta = tl.load(delta_ptr + k, mask=mask, other=0.).to(tl.float32)
    a = alpha * (gamma / _divisor(gamma, mask, K, eps, OMEGA))
    tl.store(ag_ptr + k, a * gamma, mask=mask)
    tl.store(sh0_ptr + k, delta + a * beta, mask=mask)


@triton.jit
def _vectors_backward_kernel(gamma_ptr, beta_ptr, alpha_ptr, g_ag_ptr, g_sh0_ptr, d_gamma_ptr,
                             d_beta_ptr, d_alpha_ptr, d_delta_ptr, K, eps, OMEGA: tl.constexpr,
                             BK: tl.constexpr):
    k = tl.arange(0, BK)
    mask = k < K
    gamma = tl.load(gamma_ptr + k, mask=mask, other=0.).to(tl.float32)
    beta = tl.load(beta_ptr + k, mask=mask, other=0.).to(tl.float32)
    alpha = tl.load(alpha_ptr + k, mask=mask, other=0.).to(tl.float32)
    g_ag = tl.load(g_ag_ptr + k, mask=mask, other=0.)
    g_sh0 = tl.load(g_sh0_ptr + k, mask=mask, other=0.)
    d = _divisor(gamma, mask, K, eps, OMEGA)
    omega = gamma / d
    a = alpha * omega
    q = g_ag * gamma + g_sh0 * beta
    r = q * alpha
    if OMEGA == 0:
        dd = gamma / d
    elif OMEGA == 1:
        dd = gamma / (K * d)
    else:
        dd = tl.where(gamma > 0, 1., tl.where(gamma < 0, -1., 0.)) / K
    rg = tl.sum(tl.where(mask, r * gamma, 0.), axis=0)
    tl.store(d_gamma_ptr + k, g_ag * a + r / d - rg / (d * d) * dd, mask=mask)
    tl.store(d_beta_ptr + k, g_sh0 * a, mask=mask)
    tl.store(d_alpha_ptr + k, q * omega, mask=mask)
    tl.store(d_delta_ptr + k, g_sh0, mask=mask)


@triton.jit
def _frozen_affine_kernel(w_ptr, b_ptr, mean_ptr, var_ptr, a_ptr, out_b_ptr, C, eps,
                          BLOCK: tl.constexpr):
    c = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = c < C
    a = tl.load(w_ptr + c, mask=mask, other=0.).to(tl.float32) / tl.sqrt(
        tl.load(var_ptr + c, mask=mask, other=1.).to(tl.float32) + eps)
    tl.store(a_ptr + c, a, mask=mask)
    tl.store(out_b_ptr + c, tl.load(b_ptr + c, mask=mask, other=0.).to(tl.float32)
             - tl.load(mean_ptr + c, mask=mask, other=0.).to(tl.float32) * a, mask=mask)


def _launch_on(t: Tensor):
    import contextlib
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


class _Vectors(torch.autograd.Function):

    @staticmethod
    def forward(ctx, gamma, beta, alpha, delta, omega: str, eps: float):
        k = gamma.numel()
        ag = torch.empty(k, device=gamma.device, dtype=torch.float32)
        sh0 = torch.empty_like(ag)
        code, bk = OMEGA_FORMS.index(omega), triton.next_power_of_2(k)
        with _launch_on(gamma):
            _vectors_kernel[(1, )](gamma, beta, alpha, delta, ag, sh0, k, eps, OMEGA=code, BK=bk)
        ctx.save_for_backward(gamma, beta, alpha)
        ctx.code, ctx.eps = code, eps
        return ag, sh0

    @staticmethod
    def backward(ctx, g_ag, g_sh0):
        gamma, beta, alpha = ctx.saved_tensors
        k = gamma.numel()
        grads = [torch.empty(k, device=gamma.device, dtype=torch.float32) for _ in range(4)]
        g_ag = torch.zeros(k, device=gamma.device) if g_ag is None else g_ag.float().contiguous()
        g_sh0 = torch.zeros_like(g_ag) if g_sh0 is None else g_sh0.float().contiguous()
        with _launch_on(gamma):
            _vectors_backward_kernel[(1, )](gamma, beta, alpha, g_ag, g_sh0, *grads, k, ctx.eps,
                                            OMEGA=ctx.code, BK=triton.next_power_of_2(k))
        d_gamma, d_beta, d_alpha, d_delta = (g.to(gamma.dtype) for g in grads)
        return d_gamma, d_beta, d_alpha, d_delta, None, None


def triton_kernel_vectors(gamma: Tensor, beta: Tensor, alpha: Tensor, delta: Tensor, omega: str,
                          eps: float) -> Tuple[Tensor, Tensor]:
    """``(ag, sh0)`` in float32 from float32 parameters (contiguous ``K``-vectors), one launch;
    autograd carries their gradients back to the four in one more."""
    return _Vectors.apply(gamma, beta, alpha, delta, omega, eps)


#: Channels a program of the frozen-affine kernel covers.
AFFINE_BLOCK = 1024


def triton_frozen_affine(weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor,
                         eps: float) -> Tuple[Tensor, Tensor]:
    """``(A, B)`` in float32 of an eval-mode norm, ``norm(x) = A[c] * x + B[c]``, one launch
    (no autograd: the caller's backward uses them as constants)."""
    c = weight.numel()
    a = torch.empty(c, device=weight.device, dtype=torch.float32)
    b = torch.empty_like(a)
    with _launch_on(weight):
        _frozen_affine_kernel[(triton.cdiv(c, AFFINE_BLOCK), )](
            weight, bias, running_mean, running_var, a, b, c, eps, BLOCK=AFFINE_BLOCK)
    return a, b
