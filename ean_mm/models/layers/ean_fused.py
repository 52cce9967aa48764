"""Fused EAN (paper Eqns 5-9): one statistics pass, one elementwise pass, recomputing backward.

Notation, for an input ``x`` of shape ``(N, C, H, W)`` with ``G`` groups of ``K = C/G`` channels;
channel ``c = g*K + k`` of sample ``n`` uses the shared parameters ``gamma_k, beta_k, alpha_k,
delta_k`` and ``M = H*W``:

* statistics, one reduction per ``(n, c)``: ``mu = mean(x)``, ``var = mean((x - mu)^2)`` (biased,
  as GroupNorm), ``rstd = 1 / sqrt(var + eps)``;
* Eqn 6: ``omega = gamma * r`` with ``r`` of the ``omega`` form (:mod:`.ean_omega`; ``'l2'``:
  ``r = 1 / sqrt(sum_k gamma_k^2 + l2_eps)``); ``a = alpha * omega``;
* Eqns 5, 7, 8 folded into one scale and one shift per ``(n, c)``::

      z = alpha * omega * (gamma * (x - mu) * rstd + beta) + delta = scale * x + shift
      scale = a * gamma * rstd,   shift = delta + a * beta - scale * mu

* Eqn 9, one elementwise pass: ``y = x * sigmoid(scale * x + shift)``.

Backward (``gy`` the incoming gradient, ``s = sigmoid(z)`` recomputed from ``x`` and the saved
per-``(n, c)`` ``mu, rstd``; nothing of full size is saved except ``x``)::

    gz  = gy * x * s * (1 - s)                         # dL/dz
    Sz  = sum_hw gz,   Szx = sum_hw gz * xhat = rstd * (sum_hw gz * x - mu * Sz)
    gx  = gy * s + scale * (gz - Sz / M - xhat * Szx / M),   xhat = (x - mu) * rstd
        # the usual normalisation backward for dz/dxhat = a * gamma, incl. the mu and rstd paths
    per k, summing over samples and groups (SZ = sum_{n,g} Sz, SZX = sum_{n,g} Szx):
    g_delta = SZ
    g_beta  = a * SZ
    g_a     = gamma * SZX + beta * SZ                   # dL/da, a = alpha * omega
    g_alpha = g_a * omega,   g_omega = g_a * alpha
    g_gamma = a * SZX + r * g_omega + dr/dgamma * sum_k(g_omega_k * gamma_k)
        # direct path + the path through omega (Eqn 6); dr/dgamma: ean_omega.omega_scale_grad

The pure functions :func:`ean_fused_forward` and :func:`ean_fused_backward` carry all the maths;
each is a statistics / coefficient part and a full-size part, which ``torch.compile`` compiles
separately (dynamic shapes, see :func:`_make_compiled`). :class:`EANFusedFunction` wires them into
autograd and :func:`ean_fused` is the entry point (dtype handling, optional compilation).
"""
import functools
import os
import warnings
from typing import Callable, Optional, Tuple

import torch
from torch.autograd.function import once_differentiable

from .ean_omega import omega_scale, omega_scale_grad

__all__ = ['ean_fused', 'ean_fused_forward', 'ean_fused_backward', 'EANFusedFunction']

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _coefficients(gamma: torch.Tensor, alpha: torch.Tensor, l2_eps: float,
                  omega_form: str) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(r, omega, a)`` of Eqn 6 and the adaptation: ``omega = gamma * r``, ``a = alpha*omega``."""
    r = omega_scale(gamma, omega_form, l2_eps)
    omega = gamma * r
    return r, omega, alpha * omega


def _scale_shift(mu: torch.Tensor, rstd: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                 a: torch.Tensor, delta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-``(n, g, k)`` scale and shift from statistics of shape ``(N, G, K)``."""
    scale = (a * gamma) * rstd
    shift = (delta + a * beta) - scale * mu
    return scale, shift


def _moments(x: torch.Tensor, eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(mu, rstd)`` of every ``(n, c)`` plane, shape ``(N, C)``: one reduction, biased variance."""
    n, c, h, w = x.shape
    if x.device.type == 'cpu' and not torch.compiler.is_compiling():
        # Eager CPU: torch.var_mean is not vectorised there (~10x slower than GroupNorm's
        # kernel), so take the identical single-pass statistics from GroupNorm's own kernel
        # (one group per channel; its normalised output is discarded).
        _, mu, rstd = torch.native_group_norm(x, None, None, n, c, h * w, c, eps)
        return mu, rstd
    var, mu = torch.var_mean(x, dim=(2, 3), unbiased=False)
    return mu, torch.rsqrt(var + eps)


def ean_fused_forward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                      alpha: torch.Tensor, delta: torch.Tensor, groups: int, eps: float,
                      l2_eps: float, omega_form: str
                      ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pure fused forward: ``(y, mu, rstd)``; ``mu`` and ``rstd`` have shape ``(N, G, K)``.

    ``y = x * sigmoid(scale * x + shift)`` (see the module docstring). Meant to run without
    autograd recording, inside :class:`EANFusedFunction`.
    """
    return _forward(_forward_coefficients, _forward_apply, x, gamma, beta, alpha, delta, groups,
                    eps, l2_eps, omega_form)


def _forward(coefficients_fn: Callable, apply_fn: Callable, x, gamma, beta, alpha, delta,
             groups, eps, l2_eps, omega_form):
    # Two parts, compiled separately under torch.compile (see _make_compiled).
    scale, shift, mu, rstd = coefficients_fn(x, gamma, beta, alpha, delta, groups, eps, l2_eps,
                                             omega_form)
    return apply_fn(x, scale, shift), mu, rstd


def _forward_coefficients(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                          alpha: torch.Tensor, delta: torch.Tensor, groups: int, eps: float,
                          l2_eps: float, omega_form: str
                          ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The statistics pass: ``scale, shift`` of shape ``(N, C, 1, 1)``, ``mu, rstd`` of shape
    ``(N, G, K)``."""
    n, c, h, w = x.shape
    k = c // groups
    mu, rstd = _moments(x, eps)
    mu, rstd = mu.view(n, groups, k), rstd.view(n, groups, k)
    _, _, a = _coefficients(gamma, alpha, l2_eps, omega_form)
    scale, shift = _scale_shift(mu, rstd, gamma, beta, a, delta)
    return scale.view(n, c, 1, 1), shift.view(n, c, 1, 1), mu, rstd


def _forward_apply(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """The elementwise pass (Eqns 8-9): ``x * sigmoid(scale * x + shift)``."""
    return x * torch.sigmoid(torch.addcmul(shift, scale, x))


def ean_fused_backward(grad_y: torch.Tensor, x: torch.Tensor, mu: torch.Tensor,
                       rstd: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                       alpha: torch.Tensor, delta: torch.Tensor, l2_eps: float,
                       omega_form: str, need_x: bool = True
                       ) -> Tuple[Optional[torch.Tensor], torch.Tensor, torch.Tensor,
                                  torch.Tensor, torch.Tensor]:
    """Pure fused backward: ``(grad_x, grad_gamma, grad_beta, grad_alpha, grad_delta)``.

    Recomputes ``s = sigmoid(scale * x + shift)`` from ``x`` and the per-``(n, g, k)`` ``mu``,
    ``rstd`` returned by :func:`ean_fused_forward`. ``grad_x`` is ``None`` unless ``need_x``.
    """
    return _backward(_backward_pass, grad_y, x, mu, rstd, gamma, beta, alpha, delta, l2_eps,
                     omega_form, need_x)


def _backward(pass_fn: Callable, grad_y, x, mu, rstd, gamma, beta, alpha, delta, l2_eps,
              omega_form, need_x=True):
    # Per-(n, c) coefficients, then the full-size pass (compiled separately under
    # torch.compile, see _make_compiled), then the parameter gradients from its sums.
    n, c = x.shape[:2]
    groups, k = mu.shape[1], mu.shape[2]
    r, omega, a = _coefficients(gamma, alpha, l2_eps, omega_form)
    scale, shift = _scale_shift(mu, rstd, gamma, beta, a, delta)
    grad_x, sum_gz, sum_gz_xhat = pass_fn(
        grad_y, x, scale.view(n, c, 1, 1), shift.view(n, c, 1, 1), mu.view(n, c, 1, 1),
        rstd.view(n, c, 1, 1), need_x)
    sz = sum_gz.view(n, groups, k).sum(dim=(0, 1))
    szx = sum_gz_xhat.view(n, groups, k).sum(dim=(0, 1))
    grad_delta = sz
    grad_beta = a * sz
    grad_a = gamma * szx + beta * sz
    grad_alpha = grad_a * omega
    grad_omega = grad_a * alpha
    grad_gamma = (a * szx + r * grad_omega
                  + omega_scale_grad(gamma, r, omega_form) * (grad_omega * gamma).sum())
    return grad_x, grad_gamma, grad_beta, grad_alpha, grad_delta


def _backward_pass(grad_y: torch.Tensor, x: torch.Tensor, scale: torch.Tensor,
                   shift: torch.Tensor, mu: torch.Tensor, rstd: torch.Tensor, need_x: bool
                   ) -> Tuple[Optional[torch.Tensor], torch.Tensor, torch.Tensor]:
    """The full-size part of the backward; ``scale, shift, mu, rstd`` of shape ``(N, C, 1, 1)``.

    Returns ``grad_x`` (``None`` unless ``need_x``) and the per-``(n, c)`` sums ``Sz`` and
    ``sum_hw gz * xhat`` (shape ``(N, C, 1, 1)``).
    """
    m = x.shape[2] * x.shape[3]
    s = torch.sigmoid(torch.addcmul(shift, scale, x))
    gys = grad_y * s  # the direct path y = x * s
    gz = gys * x * (1 - s)  # dL/dz
    sum_gz = gz.sum(dim=(2, 3), keepdim=True)
    sum_gzx = (gz * x).sum(dim=(2, 3), keepdim=True)
    sum_gz_xhat = rstd * (sum_gzx - mu * sum_gz)  # sum_hw gz * (x - mu) * rstd

    grad_x = None
    if need_x:
        # gx = gys + scale * gz + coef_x * x + coef_1, i.e. scale*(gz - Sz/M - xhat*Szx/M).
        coef_x = -scale * rstd * sum_gz_xhat / m
        coef_1 = -scale * sum_gz / m - coef_x * mu
        grad_x = torch.addcmul(gys, gz, scale)
        grad_x = grad_x + (coef_x * x + coef_1)
    return grad_x, sum_gz, sum_gz_xhat


# ---------------------------------------------------------------------------------------------
# Optional torch.compile of the two pure functions, with a fallback to eager.

_EAGER = (ean_fused_forward, ean_fused_backward)
_compiled: Optional[Tuple[Callable, Callable]] = None
_compile_failed = False


def _compile_requested(flag: Optional[bool]) -> bool:
    if flag is not None:
        return bool(flag)
    return os.environ.get('EAN_COMPILE', '0').strip().lower() in ('1', 'true', 'yes', 'on')


def _kernels(use_compile: bool) -> Tuple[Callable, Callable]:
    global _compiled
    if not use_compile or _compile_failed:
        return _EAGER
    if _compiled is None:
        try:
            _compiled = _make_compiled()
        except Exception as err:  # torch.compile unavailable on this build/platform
            _disable_compile(err)
            return _EAGER
    return _compiled


def _make_compiled() -> Tuple[Callable, Callable]:
    """The forward and backward with their full-size parts compiled.

    * ``dynamic=True``: one graph per part serves every layer shape, batch and image size (only
      sizes 0/1 and equal sizes are specialised). With static or automatic shapes every EAN
      layer shape compiled its own graphs, and past torch._dynamo's recompile limit (8 per
      function; EAN-ResNet-50's 4 shapes x inference/training already reach it, MobileNeXt has
      8 shapes) dynamo silently ran the remaining calls eagerly.
    * Separate parts, so that the per-``(n, c)`` scale and shift reach the full-size loops as
      materialised ``(N, C, 1, 1)`` tensors: in one graph inductor inlined their computation from
      the ``K``-vectors into the elementwise loops, with symbolic-size integer division and
      modulo per vector of elements, which made the dynamic-shape forward 1.3-1.8x slower than
      static-shape ones (the backward up to 1.2x). Split, they run at about static-kernel speed.
    * The small per-``K`` parameter computations stay eager (a few microseconds per layer).
    """
    coefficients = torch.compile(_forward_coefficients, dynamic=True)
    apply = torch.compile(_forward_apply, dynamic=True)
    grad_pass = torch.compile(_backward_pass, dynamic=True)
    return (functools.partial(_forward, coefficients, apply),
            functools.partial(_backward, grad_pass))


def _disable_compile(err: Exception) -> None:
    global _compile_failed
    _compile_failed = True
    warnings.warn(f'EAN: torch.compile of the fused kernels failed ({type(err).__name__}: '
                  f'{err}); falling back to eager.', RuntimeWarning, stacklevel=3)


def _call(index: int, use_compile: bool, *args):
    fn = _kernels(use_compile)[index]
    if fn is _EAGER[index]:
        return fn(*args)
    # Autograd is not recording here (inside EANFusedFunction), so the compiled kernels get
    # detached tensors: dynamo keeps nn.Parameter shapes static (force_parameter_static_shapes,
    # which would pin the channel count of every layer again) and guards on requires_grad
    # (which would split inference and training into separate graphs).
    compiled_args = [a.detach() if isinstance(a, torch.Tensor) else a for a in args]
    try:
        return fn(*compiled_args)
    except Exception as err:  # compilation happens lazily, at the first call
        _disable_compile(err)
        return _EAGER[index](*args)


class EANFusedFunction(torch.autograd.Function):
    """Autograd wrapper of the fused EAN; saves only ``x``, ``mu``, ``rstd`` and the parameters.

    Inputs must share one floating dtype (the caller, :func:`ean_fused`, casts). First-order
    only (``once_differentiable``).
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, alpha, delta, groups, eps, l2_eps, omega_form,
                use_compile=False):
        y, mu, rstd = _call(0, use_compile, x, gamma, beta, alpha, delta, groups, eps, l2_eps,
                            omega_form)
        ctx.save_for_backward(x, mu, rstd, gamma, beta, alpha, delta)
        ctx.l2_eps, ctx.omega_form, ctx.use_compile = l2_eps, omega_form, use_compile
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        x, mu, rstd, gamma, beta, alpha, delta = ctx.saved_tensors
        with torch.autocast(device_type=x.device.type, enabled=False):
            grads = _call(1, ctx.use_compile, grad_y.to(x.dtype), x, mu, rstd,
                          gamma, beta, alpha, delta, ctx.l2_eps, ctx.omega_form,
                          ctx.needs_input_grad[0])
        return (*grads, None, None, None, None, None)


def ean_fused(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, alpha: torch.Tensor,
              delta: torch.Tensor, groups: int, eps: float = 1e-5, l2_eps: float = 1e-5,
              omega_form: str = 'l2', use_compile: Optional[bool] = None) -> torch.Tensor:
    """Fused EAN of ``x`` (``(N, C, H, W)``) with the shared ``C/G``-vectors of parameters.

    Float16/bfloat16 inputs or parameters (e.g. under autocast) are computed in float32 and the
    result is returned in ``x.dtype``. ``use_compile`` (default: environment variable
    ``EAN_COMPILE=1``) runs the kernels through ``torch.compile``, falling back to eager (with a
    warning) when compilation fails.
    """
    dtype = x.dtype
    compute = torch.float32 if dtype in _LOW_PRECISION else dtype
    with torch.autocast(device_type=x.device.type, enabled=False):
        y = EANFusedFunction.apply(
            x.to(compute), gamma.to(compute), beta.to(compute), alpha.to(compute),
            delta.to(compute), groups, eps, l2_eps, omega_form,
            _compile_requested(use_compile))
    return y.to(dtype)
