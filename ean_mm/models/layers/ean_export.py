"""EAN (paper Eqns 5-9) in standard ONNX operators: the forms an exporter can write.

Every form computes, per ``(n, c)`` plane of ``x`` (``M = H*W`` values, channel ``c = g*K + k``,
``ag = a*gamma``, ``sh0 = delta + a*beta``, ``a = alpha*omega``: :meth:`.EAN.kernel_vectors`)::

    mu = mean(x),  var = mean((x - mu)^2),  rstd = 1 / sqrt(var + eps)
    y = x * sigmoid(ag[k] * rstd * (x - mu) + sh0[k])

and differs only in the operators it leaves in the graph:

* ``'grouped'``: Reshape to ``(N*G, K, H, W)``, InstanceNormalization (scale ``ag``, bias
  ``sh0``), Reshape back, Sigmoid, Mul;
* ``'instance'``: InstanceNormalization of ``x`` itself, scale and bias ``ag``, ``sh0``
  repeated ``G`` times (every plane is normalised on its own, so grouping changes nothing),
  Sigmoid, Mul;
* ``'moments'``: ReduceMean of ``x`` and of ``x * x``, ``var = mean(x^2) - mu^2`` (clamped at
  0), the per-plane ``scale = ag * rstd``, ``shift = sh0 - scale * mu`` on ``(N, C)`` values,
  then one elementwise chain ``x * sigmoid(x * scale + shift)``;
* ``'centered'``: ReduceMean of ``x``, ``d = x - mu``, ReduceMean of ``d * d``, then
  ``x * sigmoid(d * (ag * rstd) + sh0)``;
* ``'layernorm'``: LayerNormalization of ``x`` over ``(H, W)`` without affine (each plane
  on its own, as Eqn 5), then ``x * sigmoid(xhat * ag + sh0)``.
"""
from typing import Callable, Dict

import torch
from torch import Tensor

__all__ = ['EXPORT_FORMS', 'export_form']


def _repeat(v: Tensor, c: int) -> Tensor:
    """``v`` (``K`` values) repeated along the ``C = G*K`` channels, as ``(1, C, 1, 1)``."""
    return v.repeat(c // v.numel()).view(1, c, 1, 1)


def _grouped(x: Tensor, ag: Tensor, sh0: Tensor, groups: int, eps: float) -> Tensor:
    n, c, h, w = x.shape
    grouped = x.reshape(n * groups, c // groups, h, w)
    # the op itself: F.instance_norm refuses 1x1 planes, which Eqn 5 maps to 0
    logits = torch.instance_norm(grouped, ag, sh0, None, None, True, 0.0, eps, False)
    return x * torch.sigmoid(logits).reshape(n, c, h, w)


def _instance(x: Tensor, ag: Tensor, sh0: Tensor, groups: int, eps: float) -> Tensor:
    c = x.shape[1]
    logits = torch.instance_norm(x, ag.repeat(c // ag.numel()), sh0.repeat(c // sh0.numel()),
                                 None, None, True, 0.0, eps, False)
    return x * torch.sigmoid(logits)


def _moments(x: Tensor, ag: Tensor, sh0: Tensor, groups: int, eps: float) -> Tensor:
    c = x.shape[1]
    mu = x.mean(dim=(2, 3), keepdim=True)
    var = torch.relu((x * x).mean(dim=(2, 3), keepdim=True) - mu * mu)
    scale = _repeat(ag, c) * torch.rsqrt(var + eps)
    shift = _repeat(sh0, c) - scale * mu
    return x * torch.sigmoid(x * scale + shift)


def _centered(x: Tensor, ag: Tensor, sh0: Tensor, groups: int, eps: float) -> Tensor:
    c = x.shape[1]
    d = x - x.mean(dim=(2, 3), keepdim=True)
    rstd = torch.rsqrt((d * d).mean(dim=(2, 3), keepdim=True) + eps)
    return x * torch.sigmoid(d * (_repeat(ag, c) * rstd) + _repeat(sh0, c))


def _layernorm(x: Tensor, ag: Tensor, sh0: Tensor, groups: int, eps: float) -> Tensor:
    c, h, w = x.shape[1:]
    xhat = torch.nn.functional.layer_norm(x, (h, w), None, None, eps)
    return x * torch.sigmoid(xhat * _repeat(ag, c) + _repeat(sh0, c))


_FORMS: Dict[str, Callable[[Tensor, Tensor, Tensor, int, float], Tensor]] = {
    'grouped': _grouped, 'instance': _instance, 'moments': _moments, 'centered': _centered,
    'layernorm': _layernorm}
#: The names of the forms, the default (:data:`.EAN.export_form`) first.
EXPORT_FORMS = ('layernorm', 'instance', 'grouped', 'moments', 'centered')


def export_form(form: str, x: Tensor, ag: Tensor, sh0: Tensor, groups: int,
                eps: float) -> Tensor:
    """EAN's output for ``x`` ``(N, C, H, W)`` (in ``ag``'s dtype) in form ``form``."""
    if form not in _FORMS:
        raise ValueError(f'EAN export form must be one of {EXPORT_FORMS}, got {form!r}')
    return _FORMS[form](x, ag, sh0, groups, eps)
