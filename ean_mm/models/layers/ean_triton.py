"""EAN's Triton kernels (the maths of :mod:`.ean_ops`): one program per ``(n, c)`` plane, which
sweeps the plane in blocks twice (statistics, then apply / sums, then gradient); the second
sweep reads from cache. Float32 arithmetic for every input dtype. ``TRITON_INTERPRET=1`` runs
them on CPU tensors, which is how they are tested without a GPU."""
from typing import Optional, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = ['triton_forward', 'triton_backward']

MAX_BLOCK = 2048


@triton.jit
def _ean_forward_kernel(u_ptr, y_ptr, ag_ptr, sh0_ptr, mu_ptr, rstd_ptr, C, K, M, eps,
                        BLOCK: tl.constexpr):
    plane = tl.program_id(0)
    base = plane.to(tl.int64) * M
    k = (plane % C) % K
    shift0 = tl.load(u_ptr + base).to(tl.float32)  # shifted sums: no cancellation
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    acc2 = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, M, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < M
        d = tl.where(mask, tl.load(u_ptr + base + offs, mask=mask, other=0.).to(tl.float32)
                     - shift0, 0.)
        acc += d
        acc2 += d * d
    dmean = tl.sum(acc, axis=0) / M
    var = tl.maximum(tl.sum(acc2, axis=0) / M - dmean * dmean, 0.)
    mean = shift0 + dmean
    rstd = 1. / tl.sqrt(var + eps)
    tl.store(mu_ptr + plane, mean)
    tl.store(rstd_ptr + plane, rstd)
    scale = tl.load(ag_ptr + k) * rstd
    shift = tl.load(sh0_ptr + k) - scale * mean
    for start in range(0, M, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < M
        u = tl.load(u_ptr + base + offs, mask=mask, other=0.).to(tl.float32)
        s = 1. / (1. + tl.exp(-(scale * u + shift)))
        tl.store(y_ptr + base + offs, (u * s).to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _ean_backward_kernel(gy_ptr, u_ptr, gu_ptr, ag_ptr, sh0_ptr, mu_ptr, rstd_ptr, a_ptr, b_ptr,
                         sz_ptr, sx_ptr, C, K, M, AFFINE: tl.constexpr, BLOCK: tl.constexpr):
    plane = tl.program_id(0)
    base = plane.to(tl.int64) * M
    ch = plane % C
    k = ch % K
    mean = tl.load(mu_ptr + plane)
    rstd = tl.load(rstd_ptr + plane)
    scale = tl.load(ag_ptr + k) * rstd
    shift = tl.load(sh0_ptr + k) - scale * mean
    if AFFINE:
        aa = tl.load(a_ptr + ch)
        bb = tl.load(b_ptr + ch)
    acc_z = tl.zeros([BLOCK], dtype=tl.float32)
    acc_zu = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, M, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < M
        u = tl.load(u_ptr + base + offs, mask=mask, other=0.).to(tl.float32)
        if AFFINE:
            u = aa * u + bb
        g = tl.load(gy_ptr + base + offs, mask=mask, other=0.).to(tl.float32)
        s = 1. / (1. + tl.exp(-(scale * u + shift)))
        gz = tl.where(mask, g * s * u * (1. - s), 0.)
        acc_z += gz
        acc_zu += gz * u
    sz = tl.sum(acc_z, axis=0)
    sx = rstd * (tl.sum(acc_zu, axis=0) - mean * sz)
    tl.store(sz_ptr + plane, sz)
    tl.store(sx_ptr + plane, sx)
    cx = -scale * rstd * sx / M
    c1 = -scale * sz / M - cx * mean
    for start in range(0, M, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < M
        u = tl.load(u_ptr + base + offs, mask=mask, other=0.).to(tl.float32)
        if AFFINE:
            u = aa * u + bb
        g = tl.load(gy_ptr + base + offs, mask=mask, other=0.).to(tl.float32)
        s = 1. / (1. + tl.exp(-(scale * u + shift)))
        gys = g * s
        gu = gys + scale * (gys * u * (1. - s)) + cx * u + c1
        tl.store(gu_ptr + base + offs, gu.to(gu_ptr.dtype.element_ty), mask=mask)


def _block(m: int, block: Optional[int]) -> int:
    return block or min(MAX_BLOCK, triton.next_power_of_2(max(m, 1)))


def triton_forward(u: Tensor, ag: Tensor, sh0: Tensor, eps: float,
                   block: Optional[int] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """``(y, mu, rstd)``; ``block`` overrides the block size (tests: planes of many blocks)."""
    n, c, h, w = u.shape
    u = u.contiguous()
    y = torch.empty_like(u)
    mu = torch.empty((n, c), device=u.device, dtype=torch.float32)
    rstd = torch.empty_like(mu)
    _ean_forward_kernel[(n * c, )](u, y, ag.float().contiguous(), sh0.float().contiguous(), mu,
                                   rstd, c, ag.numel(), h * w, eps, BLOCK=_block(h * w, block))
    return y, mu.to(ag.dtype), rstd.to(ag.dtype)


def triton_backward(gy: Tensor, u: Tensor, mu: Tensor, rstd: Tensor, ag: Tensor, sh0: Tensor,
                    aff_a: Optional[Tensor], aff_b: Optional[Tensor],
                    block: Optional[int] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """``(grad_u, Sz, Sx)`` as :func:`~.ean_ops.ean_backward`."""
    n, c, h, w = u.shape
    gy, u = gy.contiguous(), u.contiguous()
    gu = torch.empty_like(u)
    sz = torch.empty((n, c), device=u.device, dtype=torch.float32)
    sx = torch.empty_like(sz)
    affine = aff_a is not None
    a = aff_a.float().contiguous() if affine else sz  # unused when not affine
    b = aff_b.float().contiguous() if affine else sz
    _ean_backward_kernel[(n * c, )](gy, u, gu, ag.float().contiguous(), sh0.float().contiguous(),
                                    mu.float().contiguous(), rstd.float().contiguous(), a, b, sz,
                                    sx, c, ag.numel(), h * w, AFFINE=affine,
                                    BLOCK=_block(h * w, block))
    return gu, sz.to(ag.dtype), sx.to(ag.dtype)
