r"""Class activation maps of classifiers (EAN paper Fig. 5) and of detections.

    # classifiers: a row per image, a column per model (plain, EAN, SE, CA twins, ...)
    python tools/analysis/gradcam.py cls CONFIG CHECKPOINT [CONFIG CHECKPOINT ...] \
        --images IMG [IMG ...] --out FILE.png [--method GradCAM] [--target-class N] \
        [--target-layer backbone.layer4]

    # detectors: one PNG per image, the CAM of each of the top detections with its box
    python tools/analysis/gradcam.py det CONFIG CHECKPOINT IMG [IMG ...] --out-dir DIR \
        [--method GradCAM] [--target-layer backbone.layer4] [--top-k 3] [--score-thr 0.3] \
        [--target-class N]

The images go through each config's test pipeline and data preprocessor; the CAM is taken at
``--target-layer`` (default: the backbone's last stage; for SSD detectors the first stage their
neck taps, the deepest one every detection depends on) for the predicted class (or
``--target-class``), or for each detection's score after the detector's post-processing.
``--method``: any CAM class of the grad-cam package (GradCAM, GradCAMPlusPlus, XGradCAM,
EigenCAM, LayerCAM, HiResCAM, ...).
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import DictAction

import ean_mm  # noqa: F401  (registers ean_mm's components and the checkpoint allow-list)
from ean_mm.analysis import (classifier_cams, detection_cams, detector_stage, find_layer,
                             last_stage)
from ean_mm.apis import init_model, prepare_image
from ean_mm.utils import InputError, exit_on_input_error


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest='mode', required=True)

    def common(sub):
        sub.add_argument('--method', default='GradCAM', help='grad-cam CAM class')
        sub.add_argument('--target-layer', default=None,
                         help="module name, e.g. backbone.layer4 or neck.fpn_convs.0 "
                         "(default: the backbone's last stage; for SSD detectors the first "
                         "stage the neck taps, which every detection depends on)")
        sub.add_argument('--target-class', type=int, default=None,
                         help='class index (default: the predicted class / every class)')
        sub.add_argument('--device', default='cpu')
        sub.add_argument('--cfg-options', nargs='+', action=DictAction,
                         help='override config settings, key=value (as tools/test.py)')

    cls = modes.add_parser('cls', help='classifiers: one PNG grid, images x models')
    cls.add_argument('models', nargs='+', metavar='CONFIG CHECKPOINT',
                     help='pairs of an mmpretrain config and its checkpoint')
    cls.add_argument('--images', nargs='+', required=True)
    cls.add_argument('--out', required=True, help='output PNG')
    common(cls)

    det = modes.add_parser('det', help='detectors: one PNG per image')
    det.add_argument('config')
    det.add_argument('checkpoint')
    det.add_argument('images', nargs='+')
    det.add_argument('--out-dir', required=True)
    det.add_argument('--top-k', type=int, default=3, help='detections per image')
    det.add_argument('--score-thr', type=float, default=0.3)
    common(det)
    args = parser.parse_args(argv)
    if args.mode == 'cls' and len(args.models) % 2:
        parser.error('cls takes CONFIG CHECKPOINT pairs')
    return args


def _check_files(paths: Sequence[str], what: str) -> None:
    for path in paths:
        if not osp.isfile(path):
            raise InputError(f'{what} not found: {path!r}')


def overlay(rgb: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """``cam`` over the image; the batch padding (size divisor) beyond the image is cut off."""
    from pytorch_grad_cam.utils.image import show_cam_on_image
    h, w = rgb.shape[:2]
    return show_cam_on_image(rgb.astype(np.float32), cam[:h, :w], use_rgb=True)


def class_name(model, index: int) -> str:
    names = model.classes
    return names[index] if names and index < len(names) else str(index)


def run_cls(args) -> Tuple[str, int, int]:
    """The grid PNG: ``(path, rows = images, columns = 1 + models)``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    _check_files(args.images, 'image')
    pairs = list(zip(args.models[::2], args.models[1::2]))
    grid: List[List[Tuple[np.ndarray, str]]] = [[] for _ in args.images]
    titles = []
    for config, checkpoint in pairs:
        model = init_model(config, checkpoint, args.device, args.cfg_options)
        layer = args.target_layer or last_stage(model)
        find_layer(model, layer)
        titles.append(f'{osp.splitext(osp.basename(config))[0]}\n{layer}')
        for row, image in enumerate(args.images):
            inputs, _, rgb = prepare_image(model, image)
            cams, classes = classifier_cams(model, inputs.to(args.device), layer, args.method,
                                            args.target_class)
            if not grid[row]:
                grid[row].append((rgb, osp.basename(image)))
            grid[row].append((overlay(rgb, cams[0]), class_name(model, classes[0])))
        print(f'[gradcam] {config}: {args.method} at {layer}')
    rows, cols = len(args.images), len(pairs) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.4 * rows), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            img, label = grid[r][c]
            ax.imshow(img)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(label, fontsize=8)
            if r == 0:
                ax.set_title('image' if c == 0 else titles[c - 1], fontsize=8)
    fig.suptitle(f'{args.method}, predicted class' if args.target_class is None else
                 f'{args.method}, class {args.target_class}', fontsize=9)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=110)
    plt.close(fig)
    print(f'[gradcam] wrote {args.out} ({rows} images x {len(pairs)} models)')
    return args.out, rows, cols


def run_det(args) -> List[str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    _check_files(args.images, 'image')
    model = init_model(args.config, args.checkpoint, args.device, args.cfg_options)
    layer = args.target_layer or detector_stage(model)
    find_layer(model, layer)
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    for image in args.images:
        inputs, samples, rgb = prepare_image(model, image)
        found = detection_cams(model, inputs.to(args.device), samples, layer, args.method,
                               args.top_k, args.score_thr, args.target_class)
        cols = max(len(found), 1) + 1
        fig, axes = plt.subplots(1, cols, figsize=(2.8 * cols, 3), squeeze=False)
        axes[0][0].imshow(rgb)
        axes[0][0].set_title(osp.basename(image), fontsize=8)
        for ax, det in zip(axes[0][1:], found):
            ax.imshow(overlay(rgb, det['cam']))
            x1, y1, x2, y2 = det['bbox']
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color='lime', lw=1.5))
            ax.set_title(f"{class_name(model, det['label'])} {det['score']:.2f}", fontsize=8)
        if not found:
            axes[0][1].set_title(f'no detection >= {args.score_thr}', fontsize=8)
            axes[0][1].imshow(rgb)
        for ax in axes[0]:
            ax.set_xticks([]), ax.set_yticks([])
        fig.suptitle(f'{args.method} at {layer}', fontsize=9)
        fig.tight_layout()
        out = osp.join(args.out_dir, osp.splitext(osp.basename(image))[0] + '_cam.png')
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
        print(f'[gradcam] {image}: {len(found)} detections -> {out}')
    return written


def main(argv: Optional[Sequence[str]] = None):
    args = parse_args(argv)
    torch.set_grad_enabled(True)
    return run_cls(args) if args.mode == 'cls' else run_det(args)


if __name__ == '__main__':
    exit_on_input_error(main)
