"""EAN's kernels as PyTorch custom ops (``ean_mm::ean_forward``, ``ean_mm::ean_backward``).

With ``z = ag * (u - mu) * rstd + sh0`` per ``(n, c)`` plane of ``u`` (``ag = a * gamma``,
``sh0 = delta + a * beta``, ``a = alpha * omega``: EAN paper Eqns 5-8 folded; the caller computes
the ``K``-vectors, so autograd carries their gradients back to gamma, beta, alpha, delta):

* forward: ``y = u * sigmoid(z)``, and ``mu``, ``rstd`` of every plane; with ``aff_a``,
  ``aff_b`` given, EAN's input is ``v = aff_a[c] * u + aff_b[c]`` (a frozen norm's affine step,
  folded in: ``u`` is read once and ``v`` never written), ``mu``, ``rstd`` those of ``v``;
* backward: ``gz = gy * s * u * (1 - s)``; ``d sh0 = sum gz``, ``d ag = sum gz * uhat`` (over
  samples and groups), ``gu = gy * s + ag * rstd * (gz - Sz / M - uhat * Sx / M)``.

Backends: ``'cpp'`` (``ean_mm._C``, one memory pass per plane, built by ``pip install -e .``),
``'triton'`` (CUDA; on CPU tensors only under ``TRITON_INTERPRET=1``), ``'torch'`` (PyTorch
ops, everywhere, every dtype). ``'auto'``: Triton on CUDA for float32 / float16 / bfloat16,
PyTorch ops for float64 (which the float32 kernels would round), the C++ kernel on CPU, or
PyTorch ops with one warning where it is not built. Every backend reads a contiguous copy of
other layouts (channels-last) and returns contiguous tensors; empty tensors (``N*C*H*W = 0``)
return without a launch. Registered as custom ops with fake implementations, so that
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


def resolve_backend(backend: str, device: torch.device,
                    tensor: Optional[Tensor] = None) -> str:
    """The concrete backend for ``backend`` on ``device``; with ``tensor`` (the input), the one
    that serves it: ``'auto'`` gives CUDA inputs of dtypes the Triton kernels do not take
    (:data:`TRITON_DTYPES`) to PyTorch ops."""
    if backend not in BACKENDS:
        raise ValueError(f'EAN backend must be one of {BACKENDS}, got {backend!r}')
    if backend != 'auto':
        return backend
    if device.type == 'cuda':
        if tensor is not None and tensor.dtype not in TRITON_DTYPES:
            return 'torch'
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


#: Input dtypes of the Triton kernels (float32 arithmetic inside).
TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


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


def _affine(u: Tensor, aff_a: Optional[Tensor], aff_b: Optional[Tensor]) -> Tensor:
    """``aff_a[c] * u + aff_b[c]`` (``u`` itself without them)."""
    if aff_a is None:
        return u
    c = u.shape[1]
    return torch.addcmul(aff_b.view(1, c, 1, 1), aff_a.view(1, c, 1, 1), u)


def _torch_forward(u: Tensor, ag: Tensor, sh0: Tensor, eps: float, aff_a: Optional[Tensor],
                   aff_b: Optional[Tensor]):
    uf = _affine(u.to(ag.dtype), aff_a, aff_b)
    mu, rstd = _plane_moments(uf, eps)
    mu, rstd = mu.view(u.shape[:2]), rstd.view(u.shape[:2])
    scale, shift = _coefficients(ag, sh0, mu, rstd, u.shape[1])
    y = uf * torch.sigmoid(torch.addcmul(shift, scale, uf))
    return y.to(u.dtype), mu, rstd


def _torch_backward(gy: Tensor, u: Tensor, mu: Tensor, rstd: Tensor, ag: Tensor, sh0: Tensor,
                    aff_a: Optional[Tensor], aff_b: Optional[Tensor]):
    acc = ag.dtype
    n, c = u.shape[:2]
    uf = _affine(u.to(acc), aff_a, aff_b)
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
    if u.dtype not in TRITON_DTYPES:
        raise TypeError(f"EAN implementation='triton' takes {[str(d) for d in TRITON_DTYPES]} "
                        f"inputs (float32 arithmetic), got {u.dtype}; use implementation='auto' "
                        "(PyTorch ops for it) or 'torch'")


def _cpp():
    if _C is None:
        raise RuntimeError(f'EAN backend cpp: ean_mm._C is not built ({_CPP_ERROR})')
    return _C


def _empty_forward(u: Tensor, ag: Tensor, eps: float):
    """An empty input: no values, and the statistics of empty planes (mean 0, variance 0)."""
    stats = u.new_zeros(u.shape[:2], dtype=ag.dtype)
    return torch.empty_like(u, memory_format=torch.contiguous_format), stats, \
        torch.full_like(stats, eps ** -0.5)


def _forward_impl(u: Tensor, ag: Tensor, sh0: Tensor, eps: float, aff_a: Optional[Tensor],
                  aff_b: Optional[Tensor], backend: str):
    backend = resolve_backend(backend, u.device, u)
    if u.numel() == 0:
        return _empty_forward(u, ag, eps)
    u = u.contiguous()
    if backend == 'cpp':
        affine = (None, None) if aff_a is None else (aff_a.contiguous(), aff_b.contiguous())
        return tuple(_cpp().ean_forward(u, ag.contiguous(), sh0.contiguous(), eps, *affine))
    if backend == 'triton':
        _check_triton(u)
        from .ean_triton import triton_forward
        return triton_forward(u, ag, sh0, eps, aff_a, aff_b)
    return _torch_forward(u, ag, sh0, eps, aff_a, aff_b)


def _backward_impl(gy, u, mu, rstd, ag, sh0, aff_a, aff_b, backend):
    backend = resolve_backend(backend, u.device, u)
    if u.numel() == 0:
        return torch.zeros_like(u, memory_format=torch.contiguous_format), \
            torch.zeros_like(mu), torch.zeros_like(mu)
    gy, u = gy.contiguous(), u.contiguous()
    if backend == 'cpp':
        return tuple(_cpp().ean_backward(gy, u, mu, rstd, ag.contiguous(), sh0.contiguous(),
                                         aff_a, aff_b, True))
    if backend == 'triton':
        _check_triton(u)
        from .ean_triton import triton_backward
        return triton_backward(gy, u, mu, rstd, ag, sh0, aff_a, aff_b)
    return _torch_backward(gy, u, mu, rstd, ag, sh0, aff_a, aff_b)


@torch.library.custom_op('ean_mm::ean_forward', mutates_args=())
def ean_forward(u: Tensor, ag: Tensor, sh0: Tensor, eps: float, aff_a: Optional[Tensor] = None,
                aff_b: Optional[Tensor] = None,
                backend: str = 'auto') -> Tuple[Tensor, Tensor, Tensor]:
    """``(y, mu, rstd)`` of EAN on ``u`` ``(N, C, H, W)`` (``mu``, ``rstd``: ``(N, C)``, in
    ``ag``'s dtype); with ``aff_a``, ``aff_b`` (``C`` values each, ``ag``'s dtype), EAN's input
    is ``aff_a[c] * u + aff_b[c]``."""
    return _forward_impl(u, ag, sh0, eps, aff_a, aff_b, backend)


@ean_forward.register_fake
def _(u, ag, sh0, eps, aff_a=None, aff_b=None, backend='auto'):
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
    u, ag, sh0, eps, aff_a, aff_b, backend = inputs
    _, mu, rstd = output
    ctx.save_for_backward(u, ag, sh0, mu, rstd, aff_a, aff_b)
    ctx.backend = backend
    ctx.mark_non_differentiable(mu, rstd)


def _backward(ctx, grad_y, _grad_mu, _grad_rstd):
    u, ag, sh0, mu, rstd, aff_a, aff_b = ctx.saved_tensors
    gv, sum_gz, sum_gz_xhat = ean_backward(grad_y.to(u.dtype), u, mu, rstd, ag, sh0, aff_a,
                                           aff_b, ctx.backend)
    grad_ag, grad_sh0 = _param_grads(sum_gz, sum_gz_xhat, ag.numel())
    grad_a = grad_b = None
    if aff_a is not None:  # v = a * u + b: d u = a * d v, d a = sum d v * u, d b = sum d v
        c = u.shape[1]
        gvf = gv.to(aff_a.dtype)
        if ctx.needs_input_grad[4]:
            grad_a = (gvf * u.to(aff_a.dtype)).sum(dim=(0, 2, 3))
        if ctx.needs_input_grad[5]:
            grad_b = gvf.sum(dim=(0, 2, 3))
        gv = (gvf * aff_a.view(1, c, 1, 1)).to(u.dtype)
    return gv, grad_ag, grad_sh0, None, grad_a, grad_b, None


ean_forward.register_autograd(_backward, setup_context=_setup_context)
