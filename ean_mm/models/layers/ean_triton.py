"""EAN's Triton kernels (the maths of :mod:`.ean_ops`), float32 arithmetic for every input dtype.

``P = N*C`` planes of ``M = H*W`` values. Three ways to cover them (:func:`plan`), per pass:

* ``rows``, one sweep: planes of ``M <= ONE_SWEEP_MAX`` values, ``ROWS`` planes a program (tiny
  planes packed together); each plane is read once, held in registers for its statistics and
  written once: forward 1 read + 1 write per element, backward 2 reads + 1 write (the floor).
* ``rows``, two sweeps: one plane a program, swept in ``BLOCK``\\ s twice (statistics, then
  apply); the second read comes from L2 while the programs in flight hold less than it.
* ``split``: planes of several programs (``S`` chunks each) when there are too few planes to
  fill the GPU: a statistics kernel writes per-chunk partial sums, an apply kernel reduces them
  and writes its chunk: forward 2 reads + 1 write, backward 4 reads + 1 write.

Statistics of a plane swept in blocks are sums shifted by the plane's first value (no
cancellation); one-sweep planes take the exact two-pass moments from registers. ``AFFINE``:
EAN's input is ``A[c] * x + B[c]`` of the stored ``x`` (a frozen norm folded in, forward; the
norm's output recomputed, backward), never written. Launches run on the input's device.
``TRITON_INTERPRET=1`` runs the kernels on CPU tensors, which is how they are tested without a
GPU.
"""
import contextlib
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = ['triton_forward', 'triton_backward', 'plan', 'Plan', 'ONE_SWEEP_MAX']

#: Largest plane held in registers (one sweep).
ONE_SWEEP_MAX = 4096
#: Block of a two-sweep or split program.
SWEEP_BLOCK = 2048
#: Values a one-sweep program covers at most (planes packed up to it).
PACK_TILE = 2048
#: Most chunks a plane is split into.
MAX_SPLIT = 32
#: Programs to aim for, per streaming multiprocessor.
PROGRAMS_PER_SM = 4
#: SMs assumed off a GPU (the interpreter): an H100 / H200's 132.
DEFAULT_SMS = 132


@triton.jit
def _moments_to_coefficients(mean_x, var_x, k, aa, bb, ag_ptr, sh0_ptr, eps,
                             AFFINE: tl.constexpr):
    """``(mean, rstd, scale, shift)`` of EAN's input ``v`` from the moments of ``x``; the
    logits are ``scale * x + shift`` (``v = aa * x + bb`` with AFFINE, else ``v = x``)."""
    if AFFINE:
        mean = aa * mean_x + bb
        var = aa * aa * var_x
    else:
        mean = mean_x
        var = var_x
    rstd = 1. / tl.sqrt(var + eps)
    s_v = tl.load(ag_ptr + k) * rstd
    shift = tl.load(sh0_ptr + k) - s_v * mean
    if AFFINE:  # scale * (aa * x + bb) + shift
        return mean, rstd, s_v * aa, s_v * bb + shift
    return mean, rstd, s_v, shift


@triton.jit
def _output(x, aa, bb, scale, shift, AFFINE: tl.constexpr):
    """``y = v * sigmoid(scale * x + shift)``, ``v = aa * x + bb`` (AFFINE) or ``x``."""
    s = 1. / (1. + tl.exp(-(scale * x + shift)))
    v = aa * x + bb if AFFINE else x
    return v * s


@triton.jit
def _recompute(x_ptr, gy_ptr, offs, mask, aa, bb, scale, shift, AFFINE: tl.constexpr):
    """EAN's input ``u`` (``aa * x + bb`` with AFFINE), the upstream gradient ``g`` and the mask
    ``s = sigmoid(scale * u + shift)`` at ``offs``."""
    u = tl.load(x_ptr + offs, mask=mask, other=0.).to(tl.float32)
    if AFFINE:
        u = aa * u + bb
    g = tl.load(gy_ptr + offs, mask=mask, other=0.).to(tl.float32)
    s = 1. / (1. + tl.exp(-(scale * u + shift)))
    return u, g, s


@triton.jit
def _grad_input(u, g, s, scale, cx, c1):
    """``gu = g*s + scale*(g*s*u*(1-s)) + cx*u + c1``."""
    gys = g * s
    return gys + scale * (gys * u * (1. - s)) + cx * u + c1


# ------------------------------------------------------------------ forward
@triton.jit
def _forward_rows_kernel(x_ptr, y_ptr, ag_ptr, sh0_ptr, a_ptr, b_ptr, mu_ptr, rstd_ptr, P, C, K,
                         M, eps, ROWS: tl.constexpr, BLOCK: tl.constexpr,
                         ONE_SWEEP: tl.constexpr, AFFINE: tl.constexpr):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    rmask = rows < P
    base = rows.to(tl.int64) * M
    ch = rows % C
    k = ch % K
    aa = tl.load(a_ptr + ch, mask=rmask, other=1.) if AFFINE else 1.
    bb = tl.load(b_ptr + ch, mask=rmask, other=0.) if AFFINE else 0.
    aa2 = aa[:, None] if AFFINE else 1.
    bb2 = bb[:, None] if AFFINE else 0.
    cols = tl.arange(0, BLOCK)
    if ONE_SWEEP:
        mask = rmask[:, None] & (cols[None, :] < M)
        x = tl.load(x_ptr + base[:, None] + cols[None, :], mask=mask, other=0.).to(tl.float32)
        mean_x = tl.sum(x, axis=1) / M
        d = tl.where(mask, x - mean_x[:, None], 0.)
        var_x = tl.sum(d * d, axis=1) / M
        mean, rstd, scale, shift = _moments_to_coefficients(mean_x, var_x, k, aa, bb, ag_ptr,
                                                            sh0_ptr, eps, AFFINE)
        y = _output(x, aa2, bb2, scale[:, None], shift[:, None], AFFINE)
        tl.store(y_ptr + base[:, None] + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=mask)
    else:
        shift0 = tl.load(x_ptr + base, mask=rmask, other=0.).to(tl.float32)
        acc = tl.zeros([ROWS, BLOCK], dtype=tl.float32)
        acc2 = tl.zeros([ROWS, BLOCK], dtype=tl.float32)
        for start in range(0, M, BLOCK):
            offs = start + cols
            mask = rmask[:, None] & (offs[None, :] < M)
            x = tl.load(x_ptr + base[:, None] + offs[None, :], mask=mask, other=0.)
            d = tl.where(mask, x.to(tl.float32) - shift0[:, None], 0.)
            acc += d
            acc2 += d * d
        dmean = tl.sum(acc, axis=1) / M
        var_x = tl.maximum(tl.sum(acc2, axis=1) / M - dmean * dmean, 0.)
        mean, rstd, scale, shift = _moments_to_coefficients(shift0 + dmean, var_x, k, aa, bb,
                                                            ag_ptr, sh0_ptr, eps, AFFINE)
        for start in range(0, M, BLOCK):
            offs = start + cols
            mask = rmask[:, None] & (offs[None, :] < M)
            x = tl.load(x_ptr + base[:, None] + offs[None, :], mask=mask,
                        other=0.).to(tl.float32)
            y = _output(x, aa2, bb2, scale[:, None], shift[:, None], AFFINE)
            tl.store(y_ptr + base[:, None] + offs[None, :], y.to(y_ptr.dtype.element_ty),
                     mask=mask)
    tl.store(mu_ptr + rows, mean, mask=rmask)
    tl.store(rstd_ptr + rows, rstd, mask=rmask)


@triton.jit
def _forward_partial_kernel(x_ptr, part_ptr, M, CHUNK, S, BLOCK: tl.constexpr):
    """Chunk ``s`` of plane ``p``: its sums of ``x - x[0]`` and of their squares."""
    plane = tl.program_id(0)
    chunk = tl.program_id(1)
    base = plane.to(tl.int64) * M
    shift0 = tl.load(x_ptr + base).to(tl.float32)
    cols = tl.arange(0, BLOCK)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    acc2 = tl.zeros([BLOCK], dtype=tl.float32)
    first = chunk * CHUNK
    end = tl.minimum(first + CHUNK, M)
    for start in range(first, end, BLOCK):
        offs = start + cols
        mask = offs < end
        x = tl.load(x_ptr + base + offs, mask=mask, other=0.).to(tl.float32)
        d = tl.where(mask, x - shift0, 0.)
        acc += d
        acc2 += d * d
    out = part_ptr + plane.to(tl.int64) * 2 * S + chunk
    tl.store(out, tl.sum(acc, axis=0))
    tl.store(out + S, tl.sum(acc2, axis=0))


@triton.jit
def _forward_apply_kernel(x_ptr, y_ptr, ag_ptr, sh0_ptr, a_ptr, b_ptr, part_ptr, mu_ptr,
                          rstd_ptr, C, K, M, CHUNK, S, eps, SP: tl.constexpr,
                          BLOCK: tl.constexpr, AFFINE: tl.constexpr):
    plane = tl.program_id(0)
    chunk = tl.program_id(1)
    base = plane.to(tl.int64) * M
    ch = plane % C
    k = ch % K
    aa = tl.load(a_ptr + ch) if AFFINE else 1.
    bb = tl.load(b_ptr + ch) if AFFINE else 0.
    parts = part_ptr + plane.to(tl.int64) * 2 * S + tl.arange(0, SP)
    pmask = tl.arange(0, SP) < S
    dmean = tl.sum(tl.load(parts, mask=pmask, other=0.), axis=0) / M
    var_x = tl.maximum(tl.sum(tl.load(parts + S, mask=pmask, other=0.), axis=0) / M
                       - dmean * dmean, 0.)
    shift0 = tl.load(x_ptr + base).to(tl.float32)
    mean, rstd, scale, shift = _moments_to_coefficients(shift0 + dmean, var_x, k, aa, bb, ag_ptr,
                                                        sh0_ptr, eps, AFFINE)
    if chunk == 0:
        tl.store(mu_ptr + plane, mean)
        tl.store(rstd_ptr + plane, rstd)
    cols = tl.arange(0, BLOCK)
    first = chunk * CHUNK
    end = tl.minimum(first + CHUNK, M)
    for start in range(first, end, BLOCK):
        offs = start + cols
        mask = offs < end
        x = tl.load(x_ptr + base + offs, mask=mask, other=0.).to(tl.float32)
        y = _output(x, aa, bb, scale, shift, AFFINE)
        tl.store(y_ptr + base + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


# ------------------------------------------------------------------ backward
@triton.jit
def _backward_rows_kernel(gy_ptr, x_ptr, gu_ptr, ag_ptr, sh0_ptr, a_ptr, b_ptr, mu_ptr, rstd_ptr,
                          sz_ptr, sx_ptr, P, C, K, M, ROWS: tl.constexpr, BLOCK: tl.constexpr,
                          ONE_SWEEP: tl.constexpr, AFFINE: tl.constexpr):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    rmask = rows < P
    base = rows.to(tl.int64) * M
    ch = rows % C
    k = ch % K
    mean = tl.load(mu_ptr + rows, mask=rmask, other=0.)
    rstd = tl.load(rstd_ptr + rows, mask=rmask, other=0.)
    scale = tl.load(ag_ptr + k, mask=rmask, other=0.) * rstd
    shift = tl.load(sh0_ptr + k, mask=rmask, other=0.) - scale * mean
    aa = tl.load(a_ptr + ch, mask=rmask, other=1.)[:, None] if AFFINE else 1.
    bb = tl.load(b_ptr + ch, mask=rmask, other=0.)[:, None] if AFFINE else 0.
    scale2, shift2 = scale[:, None], shift[:, None]
    cols = tl.arange(0, BLOCK)
    if ONE_SWEEP:
        mask = rmask[:, None] & (cols[None, :] < M)
        offs = base[:, None] + cols[None, :]
        u, g, s = _recompute(x_ptr, gy_ptr, offs, mask, aa, bb, scale2, shift2, AFFINE)
        gz = tl.where(mask, g * s * u * (1. - s), 0.)
        sz = tl.sum(gz, axis=1)
        sx = rstd * (tl.sum(gz * u, axis=1) - mean * sz)
        cx = -scale * rstd * sx / M
        c1 = -scale * sz / M - cx * mean
        gu = _grad_input(u, g, s, scale2, cx[:, None], c1[:, None])
        tl.store(gu_ptr + offs, gu.to(gu_ptr.dtype.element_ty), mask=mask)
    else:
        acc_z = tl.zeros([ROWS, BLOCK], dtype=tl.float32)
        acc_zu = tl.zeros([ROWS, BLOCK], dtype=tl.float32)
        for start in range(0, M, BLOCK):
            mask = rmask[:, None] & ((start + cols)[None, :] < M)
            offs = base[:, None] + (start + cols)[None, :]
            u, g, s = _recompute(x_ptr, gy_ptr, offs, mask, aa, bb, scale2, shift2, AFFINE)
            gz = tl.where(mask, g * s * u * (1. - s), 0.)
            acc_z += gz
            acc_zu += gz * u
        sz = tl.sum(acc_z, axis=1)
        sx = rstd * (tl.sum(acc_zu, axis=1) - mean * sz)
        cx = -scale * rstd * sx / M
        c1 = -scale * sz / M - cx * mean
        for start in range(0, M, BLOCK):
            mask = rmask[:, None] & ((start + cols)[None, :] < M)
            offs = base[:, None] + (start + cols)[None, :]
            u, g, s = _recompute(x_ptr, gy_ptr, offs, mask, aa, bb, scale2, shift2, AFFINE)
            gu = _grad_input(u, g, s, scale2, cx[:, None], c1[:, None])
            tl.store(gu_ptr + offs, gu.to(gu_ptr.dtype.element_ty), mask=mask)
    tl.store(sz_ptr + rows, sz, mask=rmask)
    tl.store(sx_ptr + rows, sx, mask=rmask)


@triton.jit
def _backward_coefficients(ag_ptr, sh0_ptr, a_ptr, b_ptr, mu_ptr, rstd_ptr, plane, C, K,
                           AFFINE: tl.constexpr):
    ch = plane % C
    mean = tl.load(mu_ptr + plane)
    rstd = tl.load(rstd_ptr + plane)
    scale = tl.load(ag_ptr + ch % K) * rstd
    shift = tl.load(sh0_ptr + ch % K) - scale * mean
    aa = tl.load(a_ptr + ch) if AFFINE else 1.
    bb = tl.load(b_ptr + ch) if AFFINE else 0.
    return mean, rstd, scale, shift, aa, bb


@triton.jit
def _backward_partial_kernel(gy_ptr, x_ptr, ag_ptr, sh0_ptr, a_ptr, b_ptr, mu_ptr, rstd_ptr,
                             part_ptr, C, K, M, CHUNK, S, BLOCK: tl.constexpr,
                             AFFINE: tl.constexpr):
    """Chunk ``s`` of plane ``p``: its sums of ``gz`` and of ``gz * u``."""
    plane = tl.program_id(0)
    chunk = tl.program_id(1)
    base = plane.to(tl.int64) * M
    mean, rstd, scale, shift, aa, bb = _backward_coefficients(
        ag_ptr, sh0_ptr, a_ptr, b_ptr, mu_ptr, rstd_ptr, plane, C, K, AFFINE)
    cols = tl.arange(0, BLOCK)
    acc_z = tl.zeros([BLOCK], dtype=tl.float32)
    acc_zu = tl.zeros([BLOCK], dtype=tl.float32)
    first = chunk * CHUNK
    end = tl.minimum(first + CHUNK, M)
    for start in range(first, end, BLOCK):
        offs = start + cols
        mask = offs < end
        u, g, s = _recompute(x_ptr, gy_ptr, base + offs, mask, aa, bb, scale, shift, AFFINE)
        gz = tl.where(mask, g * s * u * (1. - s), 0.)
        acc_z += gz
        acc_zu += gz * u
    out = part_ptr + plane.to(tl.int64) * 2 * S + chunk
    tl.store(out, tl.sum(acc_z, axis=0))
    tl.store(out + S, tl.sum(acc_zu, axis=0))


@triton.jit
def _backward_apply_kernel(gy_ptr, x_ptr, gu_ptr, ag_ptr, sh0_ptr, a_ptr, b_ptr, mu_ptr,
                           rstd_ptr, part_ptr, sz_ptr, sx_ptr, C, K, M, CHUNK, S,
                           SP: tl.constexpr, BLOCK: tl.constexpr, AFFINE: tl.constexpr):
    plane = tl.program_id(0)
    chunk = tl.program_id(1)
    base = plane.to(tl.int64) * M
    mean, rstd, scale, shift, aa, bb = _backward_coefficients(
        ag_ptr, sh0_ptr, a_ptr, b_ptr, mu_ptr, rstd_ptr, plane, C, K, AFFINE)
    parts = part_ptr + plane.to(tl.int64) * 2 * S + tl.arange(0, SP)
    pmask = tl.arange(0, SP) < S
    sz = tl.sum(tl.load(parts, mask=pmask, other=0.), axis=0)
    sx = rstd * (tl.sum(tl.load(parts + S, mask=pmask, other=0.), axis=0) - mean * sz)
    if chunk == 0:
        tl.store(sz_ptr + plane, sz)
        tl.store(sx_ptr + plane, sx)
    cx = -scale * rstd * sx / M
    c1 = -scale * sz / M - cx * mean
    cols = tl.arange(0, BLOCK)
    first = chunk * CHUNK
    end = tl.minimum(first + CHUNK, M)
    for start in range(first, end, BLOCK):
        offs = start + cols
        mask = offs < end
        u, g, s = _recompute(x_ptr, gy_ptr, base + offs, mask, aa, bb, scale, shift, AFFINE)
        tl.store(gu_ptr + base + offs, _grad_input(u, g, s, scale, cx, c1).to(
            gu_ptr.dtype.element_ty), mask=mask)


# ------------------------------------------------------------------ launch plans
@dataclass(frozen=True)
class Plan:
    """How the ``P`` planes of ``M`` values are covered: ``kind`` ``'rows'`` (``rows`` planes
    a program, one sweep when ``one_sweep``) or ``'split'`` (``split`` chunks of ``chunk``
    values a plane); ``block``: the values a program loads at once (per plane)."""
    kind: str
    block: int
    rows: int = 1
    one_sweep: bool = False
    split: int = 1
    chunk: int = 0

    @property
    def num_warps(self) -> int:
        return 8 if self.rows * self.block >= 2048 else 4


def _prev_pow2(n: int) -> int:
    return 1 << (max(n, 1).bit_length() - 1)


def plan(planes: int, m: int, sms: int = DEFAULT_SMS, split: Optional[int] = None,
         block: Optional[int] = None) -> Plan:
    """The launch plan for ``planes`` planes of ``m >= 1`` values on a GPU of ``sms`` SMs.
    ``split`` / ``block`` force a split into that many chunks / that block (tests)."""
    target = PROGRAMS_PER_SM * sms
    if split is None and block is None and m <= ONE_SWEEP_MAX:
        width = triton.next_power_of_2(m)
        rows = max(1, min(PACK_TILE // width, _prev_pow2(-(-planes // (2 * sms)))))
        return Plan('rows', width, rows=rows, one_sweep=True)
    width = block or SWEEP_BLOCK
    if split is None:
        split = min(MAX_SPLIT, -(-target // planes), -(-m // (2 * width))) if planes < target \
            else 1
    if split <= 1:
        return Plan('rows', width)
    chunk = -(-(-(-m // split)) // width) * width  # ceil(m / split), whole blocks
    return Plan('split', width, split=-(-m // chunk), chunk=chunk)


def _sms(device: torch.device) -> int:
    if device.type == 'cuda':
        return torch.cuda.get_device_properties(device).multi_processor_count
    return DEFAULT_SMS


def _on_device(t: Tensor):
    """Triton launches on the current CUDA device: make it the tensor's."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def _affine_args(aff_a: Optional[Tensor], aff_b: Optional[Tensor], dummy: Tensor):
    if aff_a is None:
        return dummy, dummy, False
    return aff_a.float().contiguous(), aff_b.float().contiguous(), True


def triton_forward(u: Tensor, ag: Tensor, sh0: Tensor, eps: float, aff_a: Optional[Tensor] = None,
                   aff_b: Optional[Tensor] = None, split: Optional[int] = None,
                   block: Optional[int] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """``(y, mu, rstd)`` as :func:`~.ean_ops.ean_forward`, for a contiguous ``u`` with
    ``N*C*H*W > 0``; ``split`` / ``block`` force a plan (:func:`plan`)."""
    n, c, h, w = u.shape
    p, m = n * c, h * w
    y = torch.empty_like(u)
    mu = torch.empty((n, c), device=u.device, dtype=torch.float32)
    rstd = torch.empty_like(mu)
    ag32, sh32 = ag.float().contiguous(), sh0.float().contiguous()
    a, b, affine = _affine_args(aff_a, aff_b, mu)
    how = plan(p, m, _sms(u.device), split, block)
    with _on_device(u):
        if how.kind == 'rows':
            _forward_rows_kernel[(triton.cdiv(p, how.rows), )](
                u, y, ag32, sh32, a, b, mu, rstd, p, c, ag.numel(), m, eps, ROWS=how.rows,
                BLOCK=how.block, ONE_SWEEP=how.one_sweep, AFFINE=affine,
                num_warps=how.num_warps)
        else:
            parts = torch.empty((p, 2, how.split), device=u.device, dtype=torch.float32)
            grid = (p, how.split)
            _forward_partial_kernel[grid](u, parts, m, how.chunk, how.split, BLOCK=how.block,
                                          num_warps=how.num_warps)
            _forward_apply_kernel[grid](
                u, y, ag32, sh32, a, b, parts, mu, rstd, c, ag.numel(), m, how.chunk, how.split,
                eps, SP=triton.next_power_of_2(how.split), BLOCK=how.block, AFFINE=affine,
                num_warps=how.num_warps)
    return y, mu.to(ag.dtype), rstd.to(ag.dtype)


def triton_backward(gy: Tensor, u: Tensor, mu: Tensor, rstd: Tensor, ag: Tensor, sh0: Tensor,
                    aff_a: Optional[Tensor], aff_b: Optional[Tensor],
                    split: Optional[int] = None,
                    block: Optional[int] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """``(grad_u, Sz, Sx)`` as :func:`~.ean_ops.ean_backward`, for contiguous ``gy``, ``u``
    with ``N*C*H*W > 0``."""
    n, c, h, w = u.shape
    p, m = n * c, h * w
    gu = torch.empty_like(u)
    sz = torch.empty((n, c), device=u.device, dtype=torch.float32)
    sx = torch.empty_like(sz)
    ag32, sh32 = ag.float().contiguous(), sh0.float().contiguous()
    mu32, rstd32 = mu.float().contiguous(), rstd.float().contiguous()
    a, b, affine = _affine_args(aff_a, aff_b, sz)
    how = plan(p, m, _sms(u.device), split, block)
    with _on_device(u):
        if how.kind == 'rows':
            _backward_rows_kernel[(triton.cdiv(p, how.rows), )](
                gy, u, gu, ag32, sh32, a, b, mu32, rstd32, sz, sx, p, c, ag.numel(), m,
                ROWS=how.rows, BLOCK=how.block, ONE_SWEEP=how.one_sweep, AFFINE=affine,
                num_warps=how.num_warps)
        else:
            parts = torch.empty((p, 2, how.split), device=u.device, dtype=torch.float32)
            grid = (p, how.split)
            _backward_partial_kernel[grid](
                gy, u, ag32, sh32, a, b, mu32, rstd32, parts, c, ag.numel(), m, how.chunk,
                how.split, BLOCK=how.block, AFFINE=affine, num_warps=how.num_warps)
            _backward_apply_kernel[grid](
                gy, u, gu, ag32, sh32, a, b, mu32, rstd32, parts, sz, sx, c, ag.numel(), m,
                how.chunk, how.split, SP=triton.next_power_of_2(how.split), BLOCK=how.block,
                AFFINE=affine, num_warps=how.num_warps)
    return gu, sz.to(ag.dtype), sx.to(ag.dtype)
