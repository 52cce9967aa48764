"""What a benchmark runs: one model's inference batch and training step on random inputs."""
import copy
import time
from typing import Callable, List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils import box_head_classes
from .twins import ModelSpec

__all__ = ['Bench', 'ModelCall', 'detection_samples', 'num_classes']


def num_classes(model: nn.Module) -> int:
    """Classes of a detector's box head (1 where it has none)."""
    return box_head_classes(model) or 1


def detection_samples(batch: int, size: int, classes: int, device: torch.device,
                      with_gt: bool = True, seed: int = 0, with_masks: bool = False) -> List:
    """Synthetic ``DetDataSample`` s for ``(batch, 3, size, size)`` inputs: 3 boxes each, and
    with ``with_masks`` their filled rectangles as ``BitmapMasks`` (Mask R-CNN's targets)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(batch):
        s = DetDataSample(metainfo=dict(
            img_id=i, img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
            batch_input_shape=(size, size), scale_factor=(1.0, 1.0)))
        if with_gt:
            xy = torch.rand(3, 2, generator=g) * size * 0.6
            wh = (torch.rand(3, 2, generator=g) * 0.35 + 0.05) * size
            boxes = torch.cat([xy, xy + wh], 1)
            s.gt_instances = InstanceData(
                bboxes=boxes.to(device),
                labels=torch.randint(classes, (3, ), generator=g).to(device))
            if with_masks:
                masks = np.zeros((3, size, size), dtype=np.uint8)
                for m, (x1, y1, x2, y2) in zip(masks, boxes.round().int().tolist()):
                    m[y1:y2, x1:x2] = 1
                s.gt_instances.masks = BitmapMasks(masks, size, size)
        samples.append(s)
    return samples


class ModelCall(nn.Module):
    """``fn(model, x)`` as a module holding ``model`` (so tracers and exporters see its
    parameters)."""

    def __init__(self, model: nn.Module, fn: Callable[[nn.Module, torch.Tensor], object]) -> None:
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, x: torch.Tensor):
        return self.fn(self.model, x)


class Bench:
    """A model with its inputs, loss and optimizer: one inference batch, one training step."""

    def __init__(self, spec: ModelSpec, model: nn.Module, batch: int, size: int,
                 device: torch.device, seed: int = 0, amp: bool = False) -> None:
        self.spec, self.model, self.device, self.amp = spec, model.to(device), device, amp
        g = torch.Generator().manual_seed(seed)
        self.inputs = torch.randn(batch, 3, size, size, generator=g).to(device)
        if spec.kind == 'classifier':
            self.labels = torch.randint(1000, (batch, ), generator=g).to(device)
        else:
            n = num_classes(model)
            self.train_samples = detection_samples(batch, size, n, device, seed=seed,
                                                   with_masks=getattr(model, 'with_mask', False))
            self.test_samples = detection_samples(batch, size, n, device, with_gt=False)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9, weight_decay=1e-4)

    def calibrate_norms(self) -> None:
        """Set every BatchNorm's running statistics to those of one forward pass in training
        mode (no gradients): with the initial ``(0, 1)`` the untrained network's activations
        grow layer after layer, and inference on them runs in another regime than on a trained
        network (on this project's CPU a plain MobileNeXt batch took 1.9x as long). Frozen norms
        (``norm_eval``) are calibrated too; momenta are restored."""
        norms = [m for m in self.model.modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        momenta = [m.momentum for m in norms]
        self.model.train()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one pass, that pass's statistics
            m.train()
        with torch.no_grad(), self.autocast():
            self.loss()
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        self.model.train()  # the model's own train() again: norm_eval puts its norms back

    def sync(self) -> None:
        """Wait for the device's queued work."""
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def autocast(self) -> torch.autocast:
        """bf16 autocast when ``amp``, else a no-op."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def infer(self) -> None:
        """One inference batch: eval mode, no gradients."""
        self.model.eval()
        with torch.no_grad(), self.autocast():
            if self.spec.kind == 'classifier':
                self.model(self.inputs, mode='tensor')
            else:
                self.model.predict(self.inputs, copy.deepcopy(self.test_samples))

    def loss(self) -> torch.Tensor:
        """Cross-entropy for classifiers, the detector's own losses for detectors."""
        if self.spec.kind == 'classifier':
            return F.cross_entropy(self.model(self.inputs, mode='tensor'), self.labels)
        losses = self.model.loss(self.inputs, copy.deepcopy(self.train_samples))
        return self.model.parse_losses(losses)[0]

    def train_step(self) -> None:
        """One training step: forward, loss, backward, SGD step."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            loss = self.loss()
        loss.backward()
        self.optimizer.step()

    def state_bytes(self) -> int:
        """Bytes of the persistent training state: parameters, buffers, optimizer state."""
        seen, total = set(), 0
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        for state in self.optimizer.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
        for t in tensors:
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                total += t.numel() * t.element_size()
        return total

    def timed(self, fn: Callable[[], object], iters: int = 1) -> float:
        """Seconds per call of ``fn`` averaged over ``iters`` calls."""
        self.sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        self.sync()
        return (time.perf_counter() - t0) / iters
