"""Whole detectors in test mode as fixed-shape tensor programs, for export: ``input`` (the batch
the config's data preprocessor makes) → ``dets (N, K, 5)`` (x1, y1, x2, y2, score in input
pixels) and ``labels (N, K)``, mmdeploy's end2end contract. ``K`` is the config's
``test_cfg.max_per_img``; rows past an image's detections are zeros with label -1.

Each step is mmdet 3.3's own prediction path written with shapes fixed at export
(``BaseDenseHead._predict_by_feat_single`` for SSD, RetinaNet and RTMDet, ``RPNHead``,
``StandardRoIHead``, ``multiclass_nms``):
a candidate that mmdet drops is kept with score -1 instead, and NMS runs per image and class
(per image and level for the RPN) through :func:`.nms_mask`. Boxes are clipped to the input's
size (mmdet clips to the image before padding: the same when the input is not padded).
"""
from typing import List, Sequence, Tuple

import torch
import torchvision
from torch import Tensor, nn

from ..utils import InputError
from .nms_mask import nms_mask

#: Score of a candidate mmdet would have dropped (all real scores are >= 0).
DROPPED = -1.0


def top_detections(boxes: Tensor, scores: Tensor, labels: Tensor, keep: Tensor,
                   k: int) -> Tuple[Tensor, Tensor]:
    """The ``k`` best kept candidates per image: ``boxes (N, Q, 4)``, ``scores``, ``labels`` and
    ``keep`` ``(N, Q)`` → ``dets (N, k, 5)``, ``labels (N, k)``, padded with zeros and -1."""
    ranked = torch.where(keep, scores, DROPPED)
    top, idx = ranked.topk(min(k, ranked.shape[1]), dim=1)
    valid = keep.gather(1, idx)
    dets = torch.cat([boxes.gather(1, idx.unsqueeze(-1).expand(-1, -1, 4)), top.unsqueeze(-1)],
                     dim=-1)
    dets = torch.where(valid.unsqueeze(-1), dets, 0.0)
    labels = torch.where(valid, labels.gather(1, idx), -1)
    if idx.shape[1] < k:  # fewer candidates than detections asked for
        pad = k - idx.shape[1]
        dets = torch.cat([dets, dets.new_zeros(dets.shape[0], pad, 5)], dim=1)
        labels = torch.cat([labels, labels.new_full((labels.shape[0], pad), -1)], dim=1)
    return dets, labels


def classwise_nms(boxes: Tensor, scores: Tensor, iou: float, score_thr: float,
                  k: int) -> Tuple[Tensor, Tensor]:
    """NMS per image and class of ``boxes (N, C, B, 4)`` and ``scores (N, C, B)``, then the
    ``k`` best of each image (mmdet's ``batched_nms`` and ``max_per_img``)."""
    n, c, b = scores.shape
    keep = nms_mask(boxes.reshape(n * c, b, 4), scores.reshape(n * c, b), iou, score_thr,
                    k).reshape(n, c * b)
    labels = torch.arange(c, device=scores.device).repeat_interleave(b).expand(n, -1)
    return top_detections(boxes.reshape(n, c * b, 4), scores.reshape(n, c * b), labels, keep, k)


def level_outputs(outputs: Sequence[Tensor], channels: int) -> Tensor:
    """A head's per-level maps ``(N, A * channels, H, W)`` as ``(N, sum(H W A), channels)``, in
    mmdet's prior order (position-major, then anchor)."""
    return torch.cat([o.permute(0, 2, 3, 1).reshape(o.shape[0], -1, channels) for o in outputs],
                     dim=1)


def _min_size_ok(boxes: Tensor, min_bbox_size: float) -> Tensor:
    """mmdet's ``min_bbox_size`` filter: width and height above it (a negative one: no filter)."""
    if min_bbox_size < 0:
        return torch.ones_like(boxes[..., 0], dtype=torch.bool)
    wh = boxes[..., 2:] - boxes[..., :2]
    return (wh[..., 0] > min_bbox_size) & (wh[..., 1] > min_bbox_size)


def decode_boxes(coder, priors: Tensor, deltas: Tensor, shape: Tuple[int, int]) -> Tensor:
    """``DeltaXYWHBBoxCoder.decode`` of ``(..., 4)`` priors and deltas, clipped to ``shape``:
    mmdet's ``delta2bbox``, which its predict runs (its ONNX branch imports the removed
    ``mmdet.core`` in 3.3)."""
    from mmdet.models.task_modules.coders.delta_xywh_bbox_coder import delta2bbox
    boxes = delta2bbox(priors.reshape(-1, 4), deltas.reshape(-1, 4), coder.means, coder.stds,
                       shape, clip_border=coder.clip_border, add_ctr_clamp=coder.add_ctr_clamp,
                       ctr_clamp=coder.ctr_clamp)
    return boxes.reshape(deltas.shape)


def _gather_rows(x: Tensor, idx: Tensor) -> Tensor:
    """``x (N, P, D)`` at ``idx (N, k)`` → ``(N, k, D)``."""
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def _nms_cfg(cfg, what: str) -> float:
    nms = cfg.get('nms') or {}
    if nms.get('type', 'nms') != 'nms' or nms.get('class_agnostic', False):
        raise InputError(f'{what}: only nms=dict(type="nms", iou_threshold=...) exports, '
                         f'got {dict(nms)}')
    return float(nms['iou_threshold'])


def decode_distances(points: Tensor, distances: Tensor, shape: Tuple[int, int],
                     clip: bool) -> Tensor:
    """``DistancePointBBoxCoder.decode`` (RTMDet): boxes ``(x - l, y - t, x + r, y + b)`` of
    points ``(..., 2)`` and distances ``(..., 4)``, clipped to ``shape`` when ``clip``."""
    x, y = points[..., 0], points[..., 1]
    boxes = torch.stack([x - distances[..., 0], y - distances[..., 1], x + distances[..., 2],
                         y + distances[..., 3]], dim=-1)
    if clip:
        h, w = shape
        limit = boxes.new_tensor([w, h, w, h])
        boxes = torch.minimum(boxes.clamp(min=0), limit)
    return boxes


class End2EndDenseHead(nn.Module):
    """mmdet's single-stage prediction (``BaseDenseHead._predict_by_feat_single`` and
    ``_bbox_post_process``): scores by sigmoid (RetinaNet, RTMDet) or softmax without the
    background (SSD), per-level ``nms_pre`` top (prior, class) candidates above ``score_thr``,
    boxes decoded from anchors (``DeltaXYWHBBoxCoder``) or points
    (``DistancePointBBoxCoder``), ``min_bbox_size``, class-wise NMS, ``max_per_img``."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector
        head = detector.bbox_head
        cfg = head.test_cfg
        self.iou = _nms_cfg(cfg, 'bbox_head.test_cfg')
        self.score_thr = float(cfg.get('score_thr', 0.0))
        self.nms_pre = int(cfg.get('nms_pre', -1))
        self.min_bbox_size = float(cfg.get('min_bbox_size', -1))
        self.max_per_img = int(cfg['max_per_img'])
        self.sigmoid = bool(head.use_sigmoid_cls)

    def forward(self, input: Tensor) -> Tuple[Tensor, Tensor]:
        from mmdet.models.task_modules.coders import DistancePointBBoxCoder
        head = self.detector.bbox_head
        n, shape, c = input.shape[0], tuple(input.shape[-2:]), head.num_classes
        cls_scores, bbox_preds = head(self.detector.extract_feat(input))[:2]
        priors = torch.cat(head.prior_generator.grid_priors(
            [s.shape[-2:] for s in cls_scores], device=input.device))
        chosen = []
        for level in cls_scores:
            logits = level_outputs([level], head.cls_out_channels)
            scores = logits.sigmoid() if self.sigmoid else logits.softmax(-1)[..., :c]
            scores = scores.reshape(n, -1)
            above = scores > self.score_thr
            k = scores.shape[1] if self.nms_pre <= 0 else min(self.nms_pre, scores.shape[1])
            idx = torch.where(above, scores, DROPPED).topk(k, dim=1)[1]
            top = torch.zeros_like(above).scatter(1, idx, True) & above
            chosen.append(torch.where(top, scores, DROPPED).reshape(n, -1, c))
        scores = torch.cat(chosen, dim=1)  # (N, P, C)
        deltas = level_outputs(bbox_preds, 4)
        if isinstance(head.bbox_coder, DistancePointBBoxCoder):
            boxes = decode_distances(priors.expand(n, -1, -1), deltas, shape,
                                     head.bbox_coder.clip_border)
        else:
            boxes = decode_boxes(head.bbox_coder, priors.expand(n, -1, -1), deltas, shape)
        scores = torch.where(_min_size_ok(boxes, self.min_bbox_size).unsqueeze(-1), scores,
                             DROPPED)
        return classwise_nms(boxes.unsqueeze(1).expand(n, c, -1, 4), scores.transpose(1, 2),
                             self.iou, self.score_thr, self.max_per_img)


class End2EndFasterRCNN(nn.Module):
    """mmdet's ``RPNHead`` proposals (sigmoid scores, per-level ``nms_pre``, ``min_bbox_size``,
    NMS per level, ``max_per_img``) and ``StandardRoIHead`` (RoIAlign at the level of each
    proposal's scale, softmax scores, class-wise boxes, ``multiclass_nms``)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector
        rpn_cfg, rcnn_cfg = detector.rpn_head.test_cfg, detector.roi_head.test_cfg
        self.rpn_iou = _nms_cfg(rpn_cfg, 'test_cfg.rpn')
        self.rpn_pre = int(rpn_cfg.get('nms_pre', -1))
        self.rpn_min_size = float(rpn_cfg.get('min_bbox_size', -1))
        self.num_proposals = int(rpn_cfg['max_per_img'])
        self.iou = _nms_cfg(rcnn_cfg, 'test_cfg.rcnn')
        self.score_thr = float(rcnn_cfg.get('score_thr', 0.0))
        self.max_per_img = int(rcnn_cfg['max_per_img'])
        extractor = detector.roi_head.bbox_roi_extractor
        for layer in extractor.roi_layers:
            if getattr(layer, 'pool_mode', 'avg') != 'avg':
                raise InputError('only RoIAlign with pool_mode="avg" exports (ONNX RoiAlign)')

    def proposals(self, feats: Sequence[Tensor], shape: Tuple[int, int]
                  ) -> Tuple[Tensor, Tensor]:
        """``(boxes (N, R, 4), valid (N, R))``: the RPN's proposals, best first."""
        rpn = self.detector.rpn_head
        cls_scores, bbox_preds = rpn(feats)
        n = cls_scores[0].shape[0]
        priors = rpn.prior_generator.grid_priors([s.shape[-2:] for s in cls_scores],
                                                 device=cls_scores[0].device)
        level_boxes, level_scores = [], []
        for score, delta, prior in zip(cls_scores, bbox_preds, priors):
            score = level_outputs([score], 1).squeeze(-1).sigmoid()  # (N, P_l)
            delta = level_outputs([delta], 4)
            prior = prior.expand(n, -1, -1)
            if 0 < self.rpn_pre < score.shape[1]:
                score, idx = score.topk(self.rpn_pre, dim=1)
                delta, prior = _gather_rows(delta, idx), _gather_rows(prior, idx)
            boxes = decode_boxes(rpn.bbox_coder, prior, delta, shape)
            level_scores.append(torch.where(_min_size_ok(boxes, self.rpn_min_size), score,
                                            DROPPED))
            level_boxes.append(boxes)
        width = max(s.shape[1] for s in level_scores)  # levels padded to one row length
        boxes = torch.stack([nn.functional.pad(b, (0, 0, 0, width - b.shape[1]))
                             for b in level_boxes], dim=1)  # (N, L, width, 4)
        scores = torch.stack([nn.functional.pad(s, (0, width - s.shape[1]), value=DROPPED)
                              for s in level_scores], dim=1)
        levels = boxes.shape[1]
        keep = nms_mask(boxes.reshape(n * levels, width, 4), scores.reshape(n * levels, width),
                        self.rpn_iou, DROPPED, self.num_proposals).reshape(n, -1)
        ranked = torch.where(keep, scores.reshape(n, -1), DROPPED)
        _, idx = ranked.topk(min(self.num_proposals, ranked.shape[1]), dim=1)
        return _gather_rows(boxes.reshape(n, -1, 4), idx), keep.gather(1, idx)

    def roi_features(self, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
        """``SingleRoIExtractor``: every RoI pooled at every level, each keeping its own level's
        (mmdet pools each RoI at its level only; same values)."""
        extractor = self.detector.roi_head.bbox_roi_extractor
        feats = feats[:extractor.num_inputs]
        levels = extractor.map_roi_levels(rois, len(feats))
        pooled = torch.zeros(rois.shape[0], extractor.out_channels,
                             *extractor.roi_layers[0].output_size, device=rois.device)
        for i, (feat, layer) in enumerate(zip(feats, extractor.roi_layers)):
            level = torchvision.ops.roi_align(
                feat, rois, layer.output_size, layer.spatial_scale, layer.sampling_ratio,
                layer.aligned)
            pooled = torch.where((levels == i).view(-1, 1, 1, 1), level, pooled)
        return pooled

    def forward(self, input: Tensor) -> Tuple[Tensor, Tensor]:
        roi_head = self.detector.roi_head
        bbox_head = roi_head.bbox_head
        n, shape, c = input.shape[0], tuple(input.shape[-2:]), bbox_head.num_classes
        feats = self.detector.extract_feat(input)
        proposals, valid = self.proposals(feats, shape)  # (N, R, 4)
        r = proposals.shape[1]
        image = torch.arange(n, device=input.device, dtype=proposals.dtype)
        rois = torch.cat([image.repeat_interleave(r).unsqueeze(1), proposals.reshape(-1, 4)], 1)
        cls_score, bbox_pred = bbox_head(self.roi_features(feats, rois))
        scores = cls_score.softmax(-1)[:, :c].reshape(n, r, c)
        per_class = 1 if bbox_head.reg_class_agnostic else c
        boxes = decode_boxes(bbox_head.bbox_coder, rois[:, 1:].repeat_interleave(per_class, 0),
                             bbox_pred.reshape(-1, 4), shape).reshape(n, r, per_class, 4)
        boxes = boxes.expand(n, r, c, 4)
        scores = torch.where(valid.unsqueeze(-1) & (scores > self.score_thr), scores, DROPPED)
        return classwise_nms(boxes.permute(0, 2, 1, 3), scores.transpose(1, 2), self.iou,
                             self.score_thr, self.max_per_img)


#: What :func:`end2end_detector` exports, for its refusal.
SUPPORTED = ('SSD (SSDLite320), RetinaNet and RTMDet heads, and Faster R-CNN (RPNHead + '
             'StandardRoIHead without masks)')


def end2end_detector(detector: nn.Module) -> nn.Module:
    """The exportable form of an mmdet detector: :class:`End2EndDenseHead` for a single-stage
    detector with an ``SSDHead``, ``RetinaHead`` or ``RTMDetHead`` (and its ``SepBN`` form),
    :class:`End2EndFasterRCNN` for an RPN + ``StandardRoIHead`` one without masks. Mask R-CNN
    (a mask head) and Cascade R-CNN (``CascadeRoIHead``) are refused with what is supported."""
    from mmdet.models.dense_heads import RetinaHead, RPNHead, RTMDetHead, SSDHead
    from mmdet.models.roi_heads import CascadeRoIHead, StandardRoIHead
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder, DistancePointBBoxCoder
    name = type(detector).__name__
    head = getattr(detector, 'bbox_head', None)
    roi_head = getattr(detector, 'roi_head', None)
    if isinstance(head, (SSDHead, RetinaHead, RTMDetHead)):
        if getattr(head.loss_cls, 'custom_cls_channels', False):
            raise InputError(f'{name}: export supports sigmoid or softmax scores, not the '
                             f'custom class channels of {type(head.loss_cls).__name__}')
        coders: tuple = (DistancePointBBoxCoder, ) if isinstance(head, RTMDetHead) else (
            DeltaXYWHBBoxCoder, )
        head_coder, wrapper = head.bbox_coder, End2EndDenseHead
    elif (isinstance(getattr(detector, 'rpn_head', None), RPNHead)
          and type(roi_head) is StandardRoIHead and not roi_head.with_mask
          and isinstance(roi_head.bbox_roi_extractor, SingleRoIExtractor)):
        coders, head_coder, wrapper = (DeltaXYWHBBoxCoder, ), roi_head.bbox_head.bbox_coder, \
            End2EndFasterRCNN
    else:
        what = ('a mask head (Mask R-CNN: masks are not exported)'
                if isinstance(roi_head, StandardRoIHead) and roi_head.with_mask else
                'a CascadeRoIHead (Cascade R-CNN)' if isinstance(roi_head, CascadeRoIHead)
                else f'head {type(head or roi_head).__name__}')
        raise InputError(f'{name}: export supports {SUPPORTED}; this model has {what}')
    if not isinstance(head_coder, coders):
        raise InputError(f'{name}: export supports {coders[0].__name__} box coding here, got '
                         f'{type(head_coder).__name__}')
    return wrapper(detector).eval()


def detections_to_list(dets: Tensor, labels: Tensor) -> List[Tuple[Tensor, Tensor, Tensor]]:
    """Per image ``(boxes, scores, labels)`` of the rows that hold a detection."""
    return [(d[l >= 0, :4], d[l >= 0, 4], l[l >= 0]) for d, l in zip(dets, labels)]
