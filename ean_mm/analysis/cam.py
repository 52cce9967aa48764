"""Class activation maps (Selvaraju et al. 2017, GradCAM, and the rest of the ``grad-cam``
package's family) of mmpretrain classifiers and mmdet detectors (EAN paper, Fig. 5).

For a class score ``y`` and a layer's activations ``A^k`` (``k`` channels), GradCAM is
``relu(sum_k w_k A^k)`` with ``w_k`` the spatial mean of ``dy / dA^k``, resized to the input.
A detection's ``y`` is its score after the detector's own post-processing (NMS included), which
stays differentiable in mmdet's predict. ``grad-cam`` is an optional dependency
(``pip install -e .[cam]``); this module imports without it.
"""
from contextlib import contextmanager
from typing import Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..utils import InputError, box_head_classes

__all__ = ['cam_method', 'find_layer', 'last_stage', 'classifier_cams', 'detection_cams',
           'DetectionCam', 'peak']


def cam_method(name: str):
    """The ``pytorch_grad_cam`` class named ``name`` (``GradCAM``, ``GradCAMPlusPlus``,
    ``EigenCAM``, ...)."""
    try:
        import pytorch_grad_cam
    except ImportError as err:
        raise InputError('CAMs need the grad-cam package: pip install -e .[cam] (or make '
                         'setup)') from err
    from pytorch_grad_cam.base_cam import BaseCAM
    known = sorted(n for n in dir(pytorch_grad_cam) if isinstance(getattr(pytorch_grad_cam, n),
                                                                  type)
                   and issubclass(getattr(pytorch_grad_cam, n), BaseCAM))
    if name not in known:
        raise InputError(f'unknown CAM method {name!r}; grad-cam has {", ".join(known)}')
    return getattr(pytorch_grad_cam, name)


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """``model``'s submodule ``name`` (``backbone.layer4``); an unknown name is an
    :class:`InputError` listing the names one level up."""
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    parent = name.rpartition('.')[0]
    options = sorted(n for n in modules if n and n.rpartition('.')[0] == parent)
    raise InputError(f'no layer {name!r} in {type(model).__name__}; '
                     f'{parent or "top level"} has: {", ".join(options[:40])}')


def last_stage(model: nn.Module) -> str:
    """The name of the backbone's last stage (ResNet ``layer4``, MobileNeXt ``layer8``,
    MobileNetV2 ``conv2``), the layer of the paper's Fig. 5."""
    backbone = model.backbone
    for attr in ('res_layers', 'layers'):
        names = getattr(backbone, attr, None)
        if names:
            return f'backbone.{names[-1]}'
    raise InputError(f'cannot tell the last stage of {type(backbone).__name__}: name the layer '
                     '(--target-layer)')


def detector_stage(model: nn.Module) -> str:
    """The deepest backbone stage that every detection depends on: the last one when the neck
    passes it to every level (FPN's top-down path), else the first stage the neck taps (SSD's
    neck: its stride-16 level never sees the last stage)."""
    from mmdet.models.necks import SSDNeck
    backbone = model.backbone
    names = getattr(backbone, 'res_layers', None) or getattr(backbone, 'layers', None)
    indices = getattr(backbone, 'out_indices', None)
    if isinstance(getattr(model, 'neck', None), SSDNeck) and names and indices:
        first = min(indices)
        if 0 <= first < len(names):
            return f'backbone.{names[first]}'
    return last_stage(model)


class _Logits(nn.Module):
    """An mmpretrain classifier as ``inputs -> logits``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, mode='tensor')


def classifier_cams(model: nn.Module, inputs: torch.Tensor, layer: str, method: str = 'GradCAM',
                    target_class: Optional[int] = None) -> Tuple[np.ndarray, List[int]]:
    """``(cams, classes)``: one ``(H, W)`` map in ``[0, 1]`` per input (the inputs' size) for
    ``target_class``, or for each input's predicted class."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    wrapped = _Logits(model).eval()
    with torch.no_grad():
        logits = wrapped(inputs)
    num_classes = logits.shape[1]
    if target_class is not None and not 0 <= target_class < num_classes:
        raise InputError(f'--target-class {target_class} is out of range: the classifier has '
                         f'{num_classes} classes (0..{num_classes - 1})')
    classes = [target_class] * len(inputs) if target_class is not None else \
        logits.argmax(1).tolist()
    with cam_method(method)(wrapped, [find_layer(model, layer)]) as cam:
        maps = cam(inputs, targets=[ClassifierOutputTarget(c) for c in classes])
    return maps, classes


@contextmanager
def _scores_keep_their_graph() -> Iterator[None]:
    """mmdet's dense heads detach their outputs before post-processing
    (``select_single_mlvl(..., detach=True)`` in ``BaseDenseHead.predict_by_feat``); for a CAM
    the detections' scores must stay differentiable, so the helper keeps the graph here."""
    from mmdet.models.dense_heads import base_dense_head
    original = base_dense_head.select_single_mlvl
    base_dense_head.select_single_mlvl = \
        lambda tensors, batch_id, detach=True: original(tensors, batch_id, detach=False)
    try:
        yield
    finally:
        base_dense_head.select_single_mlvl = original


class _Detections(nn.Module):
    """An mmdet detector as ``inputs -> [pred_instances]`` (post-processed, differentiable
    scores) for fixed data samples."""

    def __init__(self, model: nn.Module, data_samples: list) -> None:
        super().__init__()
        self.model, self.data_samples = model, data_samples

    def forward(self, x: torch.Tensor) -> list:
        with _scores_keep_their_graph():
            samples = self.model.predict(x, self.data_samples, rescale=False)
        return [s.pred_instances for s in samples]


class _DetectionScore:
    """The score of detection ``index`` (its box must still be the first run's)."""

    def __init__(self, index: int, box: torch.Tensor) -> None:
        self.index, self.box = index, box

    def __call__(self, instances) -> torch.Tensor:
        if len(instances) <= self.index or \
                not torch.allclose(instances.bboxes[self.index].detach(), self.box, atol=1e-3):
            raise RuntimeError('the detections changed between two identical forward passes')
        return instances.scores[self.index]


class DetectionCam(dict):
    """One detection's ``bbox`` (x1, y1, x2, y2 in input pixels), ``label``, ``score``, ``cam``."""


def detection_cams(model: nn.Module, inputs: torch.Tensor, data_samples: list, layer: str,
                   method: str = 'GradCAM', top_k: int = 3, score_thr: float = 0.3,
                   target_class: Optional[int] = None) -> List[DetectionCam]:
    """CAMs of the ``top_k`` best detections of the one image in ``inputs`` (of class
    ``target_class`` only, if given) scoring at least ``score_thr``, each with respect to
    ``layer``."""
    if len(inputs) != 1:
        raise ValueError('detection_cams takes one image at a time')
    num_classes = _num_classes(model)
    if target_class is not None and not 0 <= target_class < num_classes:
        raise InputError(f'--target-class {target_class} is out of range: the detector has '
                         f'{num_classes} classes (0..{num_classes - 1})')
    wrapped = _Detections(model.eval(), data_samples)
    with torch.no_grad():
        found = wrapped(inputs)[0]
    keep = [i for i in range(len(found)) if float(found.scores[i]) >= score_thr and
            (target_class is None or int(found.labels[i]) == target_class)]
    keep = sorted(keep, key=lambda i: -float(found.scores[i]))[:top_k]
    out = []
    target = find_layer(model, layer)
    for i in keep:
        box = found.bboxes[i].detach().clone()
        with cam_method(method)(wrapped, [target]) as cam:
            maps = cam(inputs, targets=[_DetectionScore(i, box)])
        out.append(DetectionCam(bbox=box.tolist(), label=int(found.labels[i]),
                                score=float(found.scores[i]), cam=maps[0]))
    return out


def _num_classes(model: nn.Module) -> int:
    classes = box_head_classes(model)
    if classes is None:
        raise InputError(f'{type(model).__name__}: no bbox_head with num_classes')
    return classes


def peak(cam: np.ndarray) -> Tuple[int, int]:
    """``(x, y)`` of a map's maximum."""
    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return int(x), int(y)

