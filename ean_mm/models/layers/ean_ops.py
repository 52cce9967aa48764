"""EAN's kernels as PyTorch custom ops (``ean_mm::ean_forward``, ``ean_mm::ean_backward``).

With ``z = ag * (u - mu) * rstd + sh0`` per ``(n, c)`` plane of ``u`` (``ag = a * gamma``,
``sh0 = delta + a * beta``, ``a = alpha * omega``: EAN paper Eqns 5-8 folded; the caller computes
the ``K``-vectors, so autograd carries their gradients back to gamma, beta, alpha, delta):

* forward: ``y = u * sigmoid(z)``, and ``mu``, ``rstd`` of every plane;
* backward: ``gz = gy * s * u * (1 - s)``; ``d sh0 = sum gz``, ``d ag = sum gz * uhat`` (over
  samples and groups), ``gu = gy * s + ag * rstd * (gz - Sz / M - uhat * Sx / M)``.

Backends: ``'cpp'`` (``ean_mm._C``, one memory pass per plane, built by ``pip install -e .``),
``'triton'`` (CUDA; on CPU tensors only under ``TRITON_INTERPRET=1``), ``'torch'`` (PyTorch
ops, everywhere). ``'auto'``: Triton on CUDA, the C++ kernel on CPU, or PyTorch ops with one
warning where it is not built. Registered as custom ops with fake implementations, so that
``torch.compile`` and ``torch.export`` keep them as single nodes.
"""
import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor

__all__ = ['BACKENDS', 'ean_forward', 'ean_backward', 'resolve_backend', 'cpp_available']

BACKENDS = ('auto', 'cpp', 'triton', 'torch')

try:
    from ... import _C  # noqa: N812
    _CPP_ERROR: Optional[str] = None
except ImportError as err:  # not built: no compiler at install time
    _C = None
    _CPP_ERROR = str(err)
_warned = False


def cpp_available() -> bool:
    return _C is not None


def resolve_backend(backend: str, device: torch.device) -> str:
    """The concrete backend for ``backend`` on ``device``."""
    if backend not in BACKENDS:
        raise ValueError(f'EAN backend must be one of {BACKENDS}, got {backend!r}')
    if backend != 'auto':
        return backend
    if device.type == 'cuda':
        if _triton_available():
            return 'triton'
        _warn_once('EAN: Triton is not installed; using PyTorch ops on CUDA, slower')
        return 'torch'
    if device.type == 'cpu' and _C is not None:
        return 'cpp'
    if device.type == 'cpu':
        _warn_once(f'EAN: the compiled CPU kernel ean_mm._C is not built ({_CPP_ERROR}); using '
                   'PyTorch ops, slower. Build it with a C++ compiler: '
                   'pip install --no-build-isolation -e .')
    return 'torch'


def _warn_once(message: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ PyTorch-ops backend
def _plane_moments(u: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    n, c, h, w = u.shape
    if u.device.type == 'cpu':  # GroupNorm's kernel: single-pass statistics, vectorised
        _, mu, rstd = torch.native_group_norm(u, None, None, n, c, h * w, c, eps)
        return mu, rstd
    var, mu = torch.var_mean(u, dim=(2, 3), unbiased=False)
    return mu, torch.rsqrt(var + eps)


def _coefficients(ag: Tensor, sh0: Tensor, mu: Tensor, rstd: Tensor, c: int):
    n = mu.shape[0]
    ag_c = ag.repeat(c // ag.numel()).view(1, c)
    sh_c = sh0.repeat(c // sh0.numel()).view(1, c)
    scale = ag_c * rstd.view(n, c)
    shift = sh_c - scale * mu.view(n, c)
    return scale.view(n, c, 1, 1), shift.view(n, c, 1, 1)


def _torch_forward(u: Tensor, ag: Tensor, sh0: Tensor, eps: float):
    acc = ag.dtype
    uf = u.to(acc)
    mu, rstd = _plane_moments(uf, eps)
    mu, rstd = mu.view(u.shape[:2]), rstd.view(u.shape[:2])
    scale, shift = _coefficients(ag, sh0, mu, rstd, u.shape[1])
    y = uf * torch.sigmoid(torch.addcmul(shift, scale, uf))
    return y.to(u.dtype), mu, rstd


def _torch_backward(gy: Tensor, u: Tensor, mu: Tensor, rstd: Tensor, ag: Tensor, sh0: Tensor,
                    aff_a: Optional[Tensor], aff_b: Optional[Tensor]):
    acc = ag.dtype
    n, c = u.shape[:2]
    uf = u.to(acc)
    if aff_a is not None:
        uf = torch.addcmul(aff_b.view(1, c, 1, 1), aff_a.view(1, c, 1, 1), uf)
    m = u.shape[2] * u.shape[3]
    scale, shift = _coefficients(ag, sh0, mu, rstd, c)
    s = torch.sigmoid(torch.addcmul(shift, scale, uf))
    gys = gy.to(acc) * s
    gz = gys * uf * (1 - s)
    sum_gz = gz.sum(dim=(2, 3))
    mu4, rstd4 = mu.view(n, c, 1, 1), rstd.view(n, c, 1, 1)
    sum_gz_xhat = rstd * ((gz * uf).sum(dim=(2, 3)) - mu * sum_gz)
    coef_x = -scale * rstd4 * sum_gz_xhat.view(n, c, 1, 1) / m
    coef_1 = -scale * sum_gz.view(n, c, 1, 1) / m - coef_x * mu4
    gu = torch.addcmul(gys, gz, scale) + (coef_x * uf + coef_1)
    return gu.to(u.dtype), sum_gz, sum_gz_xhat


# ------------------------------------------------------------------ dispatch
def _check_triton(u: Tensor) -> None:
    import os
    if u.device.type != 'cuda' and os.environ.get('TRITON_INTERPRET', '0') != '1':
        raise RuntimeError("EAN implementation='triton' needs CUDA tensors (or TRITON_INTERPRET=1 "
                           f'to run the kernels on CPU, slowly); got a {u.device.type} tensor')


def _forward_impl(u: Tensor, ag: Tensor, sh0: Tensor, eps: float, backend: str):
    backend = resolve_backend(backend, u.device)
    u = u.contiguous()
    if backend == 'cpp':
        if _C is None:
            raise RuntimeError(f'EAN backend cpp: ean_mm._C is not built ({_CPP_ERROR})')
        return tuple(_C.ean_forward(u, ag.contiguous(), sh0.contiguous(), eps))
    if backend == 'triton':
        _check_triton(u)
        from .ean_triton import triton_forward
        return triton_forward(u, ag, sh0, eps)
    return _torch_forward(u, ag, sh0, eps)


def _backward_impl(gy, u, mu, rstd, ag, sh0, aff_a, aff_b, backend):
    backend = resolve_backend(backend, u.device)
    gy, u = gy.contiguous(), u.contiguous()
    if backend == 'cpp':
        if _C is None:
            raise RuntimeError(f'EAN backend cpp: ean_mm._C is not built ({_CPP_ERROR})')
        return tuple(_C.ean_backward(gy, u, mu, rstd, ag.contiguous(), sh0.contiguous(), aff_a,
                                     aff_b, True))
    if backend == 'triton':
        _check_triton(u)
        from .ean_triton import triton_backward
        return triton_backward(gy, u, mu, rstd, ag, sh0, aff_a, aff_b)
    return _torch_backward(gy, u, mu, rstd, ag, sh0, aff_a, aff_b)


@torch.library.custom_op('ean_mm::ean_forward', mutates_args=())
def ean_forward(u: Tensor, ag: Tensor, sh0: Tensor, eps: float,
                backend: str = 'auto') -> Tuple[Tensor, Tensor, Tensor]:
    """``(y, mu, rstd)`` of EAN on ``u`` ``(N, C, H, W)`` (``mu``, ``rstd``: ``(N, C)``, in
    ``ag``'s dtype)."""
    return _forward_impl(u, ag, sh0, eps, backend)


@ean_forward.register_fake
def _(u, ag, sh0, eps, backend='auto'):
    stats = u.new_empty(u.shape[:2], dtype=ag.dtype)
    return torch.empty_like(u, memory_format=torch.contiguous_format), stats, \
        torch.empty_like(stats)


@torch.library.custom_op('ean_mm::ean_backward', mutates_args=())
def ean_backward(gy: Tensor, u: Tensor, mu: Tensor, rstd: Tensor, ag: Tensor, sh0: Tensor,
                 aff_a: Optional[Tensor], aff_b: Optional[Tensor],
                 backend: str = 'auto') -> Tuple[Tensor, Tensor, Tensor]:
    """``(grad_u, Sz, Sx)``: ``Sz = sum gz``, ``Sx = sum gz * uhat`` per plane. With ``aff_a``,
    ``aff_b`` given, ``u`` is the norm's input and the EAN input is ``aff_a * u + aff_b``
    (per channel), ``grad_u`` the gradient with respect to that EAN input."""
    return _backward_impl(gy, u, mu, rstd, ag, sh0, aff_a, aff_b, backend)


@ean_backward.register_fake
def _(gy, u, mu, rstd, ag, sh0, aff_a, aff_b, backend='auto'):
    return torch.empty_like(u, memory_format=torch.contiguous_format), torch.empty_like(mu), \
        torch.empty_like(mu)


def _param_grads(sum_gz: Tensor, sum_gz_xhat: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """``(d ag, d sh0)`` from the per-plane sums: summed over samples and groups."""
    return sum_gz_xhat.reshape(-1, k).sum(0), sum_gz.reshape(-1, k).sum(0)


def _setup_context(ctx, inputs, output):
    u, ag, sh0, eps, backend = inputs
    _, mu, rstd = output
    ctx.save_for_backward(u, ag, sh0, mu, rstd)
    ctx.backend = backend
    ctx.mark_non_differentiable(mu, rstd)


def _backward(ctx, grad_y, _grad_mu, _grad_rstd):
    u, ag, sh0, mu, rstd = ctx.saved_tensors
    gu, sum_gz, sum_gz_xhat = ean_backward(grad_y.to(u.dtype), u, mu, rstd, ag, sh0, None, None,
                                           ctx.backend)
    grad_ag, grad_sh0 = _param_grads(sum_gz, sum_gz_xhat, ag.numel())
    return gu, grad_ag, grad_sh0, None, None


ean_forward.register_autograd(_backward, setup_context=_setup_context)
