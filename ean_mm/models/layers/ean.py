"""EAN: Efficient Attention module guided by Normalization (Li, Li & Wen, AAAI 2024)."""
import contextlib
from typing import Iterator, Literal, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model.utils import _BatchNormXd

from ...registry import MODELS
from .ean_export import EXPORT_FORMS, export_form
from .ean_omega import omega_weights as _omega_weights
from .ean_groups import fit_groups
from .ean_omega import resolve_omega
from .ean_ops import BACKENDS, ean_backward, ean_forward, resolve_backend
from .hooks import hooked

#: ``implementation`` values: the kernels of :mod:`.ean_ops` (``auto``, ``cpp``, ``triton``,
#: ``torch``) and the equations (``reference``).
IMPLEMENTATIONS = BACKENDS + ('reference', )
#: The export form a jit trace that is not an ONNX export sees (FLOP counters).
TRACE_FORM = 'instance'


@MODELS.register_module()
class EAN(nn.Module):
    """Efficient Attention module guided by Normalization (paper Eqns 5-9).

    ``X`` ``(N, C, H, W)`` is split along channels into ``G`` contiguous groups ``X_k`` of
    ``C/G`` channels, each through the same attention generation unit:

    * Eqn 5: ``GN(X_k) = gamma * (X_k - mu) / sqrt(sigma^2 + eps) + beta``, a GroupNorm with
      ``C/G`` groups of one channel (statistics over ``H x W``), ``gamma, beta in R^{C/G}``;
    * Eqn 6: ``omega = gamma / sqrt(sum_i gamma_i^2 + eps_l2)`` (``omega='l2'``);
    * Eqn 7: ``X~_k = omega * GN(X_k)``;
    * Eqn 8: ``A_k = sigmoid(alpha * X~_k + delta)``, ``alpha, delta in R^{C/G}`` starting at 0
      (a fresh layer returns ``0.5 * X``);
    * Eqn 9: ``Y_k = A_k * X_k``, concatenated back in order.

    Eqn 6 sums the squares as printed (``omega='l2'``, the default); the EAN authors' released
    module has two other forms, ``'l2_mean'`` (root of the mean of the squares) and
    ``'l1_mean'`` (mean of the absolute values), see :mod:`.ean_omega`; every implementation
    takes all three, with the same keys. ``implementation='auto'`` (default)
    runs the kernels of :mod:`.ean_ops` (Triton on CUDA, C++ on CPU: one memory pass per plane,
    input dtype kept, float32 statistics); after a ``BatchNorm2d`` in a block of ours it also
    recomputes the norm's output in backward instead of keeping it
    (:meth:`forward_after_norm`); the kernels are custom ops, which ``torch.compile`` and
    ``torch.export`` keep as nodes. ``'reference'`` is the equation-by-equation path
    (:meth:`attention`). Keys: ``gn.weight``
    (gamma), ``gn.bias`` (beta), ``alpha``, ``delta``, ``C/G`` values each.

    Args:
        in_channels: ``C``.
        groups: ``G``; must divide ``in_channels`` (paper: 64 for ResNet, 8 for MobileNeXt).
        eps: GroupNorm ``epsilon`` (Eqn 5).
        l2_eps: ``varepsilon`` of Eqn 6 (of every ``omega`` form).
        omega: ``'l2'`` (Eqn 6), ``'l2_mean'`` or ``'l1_mean'``; ``None``: from
            ``l2_reduction``, else ``'l2'``.
        l2_reduction: Alias of ``omega``: ``'sum'`` is ``'l2'``, ``'mean'`` is ``'l2_mean'``.
        implementation: ``'auto'`` (default), ``'cpp'``, ``'triton'``, ``'torch'`` or
            ``'reference'``.
    """

    _abbr_ = 'ean'  # module name given by mmcv's build_plugin_layer: ``layerX.Y.ean``
    #: The ONNX form :meth:`forward_for_export` writes, one of :data:`.ean_export.EXPORT_FORMS`
    #: (the best, or within 0.005 of it, in OpenVINO in every run; in onnxruntime the forms
    #: differ less than the runs do: docs/deploy.md).
    export_form: str = EXPORT_FORMS[0]

    def __init__(self,
                 in_channels: int,
                 groups: int = 64,
                 eps: float = 1e-5,
                 l2_eps: float = 1e-5,
                 omega: Optional[Literal['l2', 'l2_mean', 'l1_mean']] = None,
                 l2_reduction: Optional[Literal['sum', 'mean']] = None,
                 implementation: Literal['auto', 'cpp', 'triton', 'torch',
                                         'reference'] = 'auto') -> None:
        super().__init__()
        groups = fit_groups(in_channels, groups)  # inside a network: one hint for all layers
        omega = resolve_omega(omega, l2_reduction)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f'EAN: implementation must be one of {IMPLEMENTATIONS}, '
                             f'got {implementation!r}.')
        self.in_channels = in_channels
        self.groups = groups
        self.l2_eps = l2_eps
        self.omega = omega
        self.implementation = implementation
        group_channels = in_channels // groups
        # One GroupNorm over a group's C/G channels, one channel per norm group (Eqn 5).
        self.gn = nn.GroupNorm(group_channels, group_channels, eps=eps)
        self.alpha = nn.Parameter(torch.zeros(group_channels))
        self.delta = nn.Parameter(torch.zeros(group_channels))

    def omega_weights(self) -> torch.Tensor:
        """``omega`` of Eqn 6 (or the ``omega`` form chosen), one value per channel of a
        group."""
        return _omega_weights(self.gn.weight, self.omega, self.l2_eps)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The attention mask ``A`` (Eqns 5-8) for ``x`` of shape ``(N, C, H, W)``."""
        n, c, h, w = x.shape
        group_channels = c // self.groups
        grouped = x.reshape(n * self.groups, group_channels, h, w)  # Grouping
        normed = self.gn(grouped)  # Eqn 5
        omega = self.omega_weights().view(1, group_channels, 1, 1)  # Eqn 6
        x_tilde = omega * normed  # Eqn 7
        mask = torch.sigmoid(self.alpha.view(1, -1, 1, 1) * x_tilde
                             + self.delta.view(1, -1, 1, 1))  # Eqn 8
        return mask.reshape(n, c, h, w)  # Aggregation keeps group order

    def kernel_vectors(self, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(ag, sh0)`` of :mod:`.ean_ops`: ``a * gamma`` and ``delta + a * beta`` with
        ``a = alpha * omega`` (Eqns 6-8), in the compute dtype of ``dtype`` (float32, or float64
        for float64 inputs); autograd carries their gradients to the parameters."""
        acc = torch.float64 if dtype == torch.float64 else torch.float32
        gamma, beta = self.gn.weight.to(acc), self.gn.bias.to(acc)
        a = self.alpha.to(acc) * self.omega_weights().to(acc)  # alpha * omega
        return a * gamma, self.delta.to(acc) + a * beta

    def _kernel_vectors_for(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """:meth:`kernel_vectors` for the kernels on ``x``: for the Triton kernels (float32
        parameters) in one Triton launch instead of about eight small ones
        (:mod:`.ean_vectors_triton`)."""
        if (x.is_cuda and self.gn.weight.dtype == torch.float32
                and resolve_backend(self.implementation, x.device, x) == 'triton'):
            from .ean_vectors_triton import triton_kernel_vectors
            return triton_kernel_vectors(self.gn.weight, self.gn.bias, self.alpha, self.delta,
                                         self.omega, self.l2_eps)
        return self.kernel_vectors(x.dtype)

    def _inference_vectors(self, x: torch.Tensor, norm: Optional[nn.Module] = None
                           ) -> Tuple[torch.Tensor, ...]:
        """``(ag, sh0)``, and with an eval-mode ``norm`` its ``(A, B)`` too, for inference (no
        autograd). On real tensors they are computed once and kept while the tensors they come
        from are unchanged (same storage, same version counter: an optimizer step,
        ``load_state_dict`` or ``.to()`` changes one of them); about ten small PyTorch ops a
        layer otherwise, which in an EAN-MobileNeXt batch on one CPU thread add up to a percent
        of the time. Not under a compiler or an exporter (their fake tensors have no storage)."""
        sources = [self.gn.weight, self.gn.bias, self.alpha, self.delta]
        if norm is not None:
            sources += [norm.weight, norm.bias, norm.running_mean, norm.running_var]
        key = None
        if type(x) is torch.Tensor and not torch.compiler.is_compiling():
            key = (x.dtype, x.device, self.implementation, self.omega,
                   None if norm is None else norm.eps,
                   tuple((t.data_ptr(), t._version) for t in sources))
            cached = self.__dict__.get('_vectors_cache')
            if cached is not None and cached[0] == key:
                return cached[1]
        ag, sh0 = self._kernel_vectors_for(x)
        vectors: Tuple[torch.Tensor, ...] = (ag, sh0)
        if norm is not None:
            vectors += _frozen_affine(norm.weight, norm.bias, norm.running_mean,
                                      norm.running_var, norm.eps, ag.dtype)
        if key is not None:
            self.__dict__['_vectors_cache'] = (key, vectors)
        return vectors

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'EAN expects (N, {self.in_channels}, H, W) input, '
                             f'got shape {tuple(x.shape)}.')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if torch.onnx.is_in_onnx_export():  # ONNX has no EAN kernel
            return self.forward_for_export(x)
        if torch.jit.is_tracing():
            # mmengine's FLOP counter traces: the form whose norm it counts with its affine
            # step (5 FLOPs an element, as the reference path's GroupNorm), whatever the file's
            return self.forward_for_export(x, TRACE_FORM)
        if self.implementation in BACKENDS:
            ag, sh0 = (self._kernel_vectors_for(x) if torch.is_grad_enabled() else
                       self._inference_vectors(x))
            return ean_forward(x, ag, sh0, self.gn.eps, backend=self.implementation)[0]
        return x * self.attention(x).to(x.dtype)  # Eqn 9

    def forward_for_export(self, x: torch.Tensor, form: Optional[str] = None) -> torch.Tensor:
        """Eqns 5-9 in standard ONNX operators, Eqns 6-8's affine steps folded into the
        per-channel ``a * gamma`` and ``delta + a * beta`` (``a = alpha * omega``), in the form
        ``form`` names (:mod:`.ean_export`; ``None``: :attr:`export_form`)."""
        ag, sh0 = self.kernel_vectors(x.dtype)
        y = export_form(form or self.export_form, x.to(ag.dtype), ag, sh0, self.groups,
                        self.gn.eps)
        return y.to(x.dtype)

    def forward_after_norm(self, norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``self(norm(x))``; for a ``BatchNorm2d`` (or mmengine's ``_BatchNormXd``, what
        ``SyncBatchNorm`` becomes in a run that is not distributed) with the kernels, in one
        step: in training mode, one autograd step that keeps only ``x`` (which the norm keeps
        anyway) and recomputes the norm's output in backward; in eval mode (inference,
        ``norm_eval=True``) the norm's affine step ``x * A + B`` folded into EAN's kernel, which
        reads ``x`` once and writes only EAN's output. Same values as ``self(norm(x))``: bit for
        bit with the C++ kernel (it rounds the fold as PyTorch's CPU norm does), up to rounding
        with the others. Not under a jit trace (mmengine's FLOP counter) nor with hooks on
        either module (or global ones): those see the two modules run, as two calls."""
        if not (self.implementation in BACKENDS and type(norm) in _BATCH_NORMS and
                norm.affine and not torch.compiler.is_compiling()
                and not torch.onnx.is_in_onnx_export() and not torch.jit.is_tracing()
                and not hooked(norm, self)):
            return self(norm(x))
        self._check(x)
        # nn.BatchNorm2d.forward's bookkeeping, then its kernel (torch.native_batch_norm)
        factor = 0.0 if norm.momentum is None else norm.momentum
        if norm.training and norm.track_running_stats and norm.num_batches_tracked is not None:
            norm.num_batches_tracked.add_(1)
            if norm.momentum is None:
                factor = 1.0 / float(norm.num_batches_tracked)
        bn_training = norm.training or (norm.running_mean is None and norm.running_var is None)
        if bn_training and not torch.is_grad_enabled():
            return self(norm(x))  # batch statistics without autograd: nothing to save
        if not bn_training and not torch.is_grad_enabled():  # inference: the norm folded in
            ag, sh0, aff_a, aff_b = self._inference_vectors(x, norm)
            return ean_forward(x, ag, sh0, self.gn.eps, aff_a, aff_b, self.implementation)[0]
        use_running = not norm.training or norm.track_running_stats
        ag, sh0 = self._kernel_vectors_for(x)
        return _BatchNormEAN.apply(
            x, norm.weight, norm.bias, ag, sh0, norm.running_mean if use_running else None,
            norm.running_var if use_running else None, bn_training, factor, norm.eps,
            self.gn.eps, self.implementation)

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, groups={self.groups}, '
                f'omega={self.omega!r}, implementation={self.implementation!r}')


#: Norm classes whose forward is ``nn.BatchNorm2d``'s on 4-d input (:meth:`EAN.forward_after_norm`).
_BATCH_NORMS = (nn.BatchNorm2d, _BatchNormXd)


def set_ean_implementation(model: nn.Module, implementation: str) -> int:
    """Set every :class:`EAN` in ``model`` to ``implementation`` (one of
    :data:`IMPLEMENTATIONS`); returns how many there are."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f'implementation must be one of {IMPLEMENTATIONS}, '
                         f'got {implementation!r}')
    layers = [m for m in model.modules() if isinstance(m, EAN)]
    for layer in layers:
        layer.implementation = implementation
    return len(layers)


@contextlib.contextmanager
def ean_export_form(model: nn.Module, form: Optional[str]) -> Iterator[int]:
    """Every :class:`EAN` in ``model`` writes export form ``form`` (one of
    :data:`.ean_export.EXPORT_FORMS`; ``None``: unchanged) inside the block, its own form
    after it; yields how many there are."""
    if form is not None and form not in EXPORT_FORMS:
        raise ValueError(f'EAN export form must be one of {EXPORT_FORMS}, got {form!r}')
    layers = [m for m in model.modules() if isinstance(m, EAN)]
    saved = [m.export_form for m in layers]
    try:
        for m in layers:
            m.export_form = form or m.export_form
        yield len(layers)
    finally:
        for m, f in zip(layers, saved):
            m.export_form = f


def _frozen_affine(weight: torch.Tensor, bias: torch.Tensor, running_mean: torch.Tensor,
                   running_var: torch.Tensor, eps: float, dtype: torch.dtype
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` of an eval-mode norm, ``norm(x) = A[c] * x + B[c]``: ``A = weight *
    rsqrt(running_var + eps)``, ``B = bias - running_mean * A`` rounded once (a fused
    multiply-add, as PyTorch's CPU BatchNorm forms it; evaluated in float64, where the product is
    exact), so that the C++ kernel's ``fma(x, A, B)`` is the norm's output bit for bit; on CUDA
    in float32, one Triton launch (:mod:`.ean_vectors_triton`)."""
    with torch.no_grad():
        if weight.is_cuda and dtype == torch.float32 and weight.dtype == torch.float32:
            from .ean_vectors_triton import triton_frozen_affine
            return triton_frozen_affine(weight, bias, running_mean, running_var, eps)
        a = weight.to(dtype) * torch.rsqrt(running_var.to(dtype) + eps)
        wide = torch.float64
        b = bias.to(wide) - running_mean.to(wide) * a.to(wide)
        return a, b.to(dtype)


class _BatchNormEAN(torch.autograd.Function):
    """``EAN(BatchNorm2d(x))`` saving ``x``, the norm's statistics and EAN's per-plane ones.
    Forward: in training mode the norm's kernel (``native_batch_norm``), then EAN's; in eval
    mode EAN's kernel alone with the norm's affine step folded in. Backward: EAN's gradient with
    the norm's output recomputed from ``x`` inside the kernel, then the norm's own backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, ag, sh0, running_mean, running_var, bn_training, momentum,
                eps, ean_eps, backend):
        if bn_training:
            u, save_mean, save_invstd = torch.native_batch_norm(
                x, weight, bias, running_mean, running_var, bn_training, momentum, eps)
            y, mu, rstd = ean_forward(u, ag, sh0, ean_eps, backend=backend)
            stats = (None, None)
        else:  # running statistics: constants of this step, the fold's vectors kept
            aff_a, aff_b = _frozen_affine(weight, bias, running_mean, running_var, eps,
                                          ag.dtype)
            y, mu, rstd = ean_forward(x, ag, sh0, ean_eps, aff_a, aff_b, backend)
            save_mean, save_invstd = aff_a, aff_b
            stats = (running_mean, running_var)
        ctx.save_for_backward(x, weight, bias, ag, sh0, save_mean, save_invstd, mu, rstd, *stats)
        ctx.bn_training, ctx.eps, ctx.backend = bn_training, eps, backend
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, weight, bias, ag, sh0, save_mean, save_invstd, mu, rstd, rm, rv = ctx.saved_tensors
        if ctx.bn_training:
            aff_a = (weight * save_invstd).to(ag.dtype)
            aff_b = (bias - save_mean * weight * save_invstd).to(ag.dtype)
        else:
            aff_a, aff_b = save_mean, save_invstd
        grad_u, sum_gz, sum_gz_xhat = ean_backward(grad_y.to(x.dtype), x, mu, rstd, ag, sh0,
                                                   aff_a, aff_b, ctx.backend)
        need = ctx.needs_input_grad
        if ctx.bn_training:
            grad_x, grad_w, grad_b = torch.ops.aten.native_batch_norm_backward(
                grad_u, x, weight, rm, rv, save_mean, save_invstd, True, ctx.eps,
                [need[0], need[1], need[2]])
        else:  # u = A * x + B with A = weight / sqrt(var + eps): d weight = sum d u * xhat
            grad_x, grad_w, grad_b = _frozen_norm_backward(grad_u, x, weight, aff_a, rm, rv,
                                                           ctx.eps, need)
        k = ag.numel()
        grad_ag = sum_gz_xhat.reshape(-1, k).sum(0)
        grad_sh0 = sum_gz.reshape(-1, k).sum(0)
        return (grad_x, grad_w, grad_b, grad_ag, grad_sh0) + (None, ) * 7


def _frozen_norm_backward(grad_u: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                          aff_a: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, eps: float,
                          need):
    """Gradients of ``u = weight * (x - mean) * invstd + bias`` with fixed ``mean``,
    ``invstd = 1 / sqrt(var + eps)``: ``d x = A * d u`` (``A = weight * invstd``),
    ``d weight = sum d u * (x - mean) * invstd``, ``d bias = sum d u``."""
    c = x.shape[1]
    acc = aff_a.dtype
    gu = grad_u.to(acc)
    grad_x = (gu * aff_a.view(1, c, 1, 1)).to(x.dtype) if need[0] else None
    grad_w = grad_b = None
    if need[1]:
        invstd = torch.rsqrt(var.to(acc) + eps)
        grad_w = ((gu * (x.to(acc) - mean.to(acc).view(1, c, 1, 1))).sum(dim=(0, 2, 3))
                  * invstd).to(weight.dtype)
    if need[2]:
        grad_b = gu.sum(dim=(0, 2, 3)).to(weight.dtype)
    return grad_x, grad_w, grad_b
