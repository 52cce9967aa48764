"""Export a trained detector to ONNX, box decoding and NMS included (mmdeploy's end2end outputs).

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out FILE.onnx [--shape H W]
        [--batch-size N] [--dynamic-batch] [--opset 18] [--ean-export-form FORM]
        [--cfg-options k=v ...]

Input ``input``: float32 N x 3 x H x W, the batch the config's data preprocessor makes (resized,
normalised, padded). Outputs ``dets`` (N, K, 5: x1, y1, x2, y2, score in input pixels) and
``labels`` (N, K); rows past an image's detections are zeros with label -1. Score threshold,
NMS IoU and K come from the config's ``test_cfg``. ``--shape`` defaults to the test pipeline's
resize scale padded as the preprocessor pads (800 x 1344 for Faster R-CNN, 320 x 320 for
SSDLite320). Faster R-CNN, SSD(Lite), RetinaNet and RTMDet detectors, EAN or not (Mask and
Cascade R-CNN are refused, naming what is supported). EAN layers are written in their export
form (``--ean-export-form``, default ``EAN.export_form``; docs/deploy.md compares them).
"""
import argparse
import os.path as osp
import time
from typing import Optional, Sequence

import torch
from mmengine.config import DictAction

import ean_mm  # noqa: F401  (registers ean_mm's components and the checkpoint allow-list)
from ean_mm.apis import init_model
from ean_mm.deploy import OnnxDetector, check_input_shape, export_onnx, input_shape_of
from ean_mm.models import EAN, ean_export_form
from ean_mm.models.layers.ean_export import EXPORT_FORMS
from ean_mm.utils import InputError, exit_on_input_error


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='detector config file')
    parser.add_argument('checkpoint', help='checkpoint of that config (tools/train.py writes)')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: from the test pipeline)')
    parser.add_argument('--batch-size', type=int, default=1, help='batch size of the input')
    parser.add_argument('--dynamic-batch', action='store_true',
                        help='any batch size at run time (the input\'s first axis is "batch")')
    parser.add_argument('--opset', type=int, default=18, help='ONNX opset (18 or newer)')
    parser.add_argument('--ean-export-form', choices=EXPORT_FORMS,
                        help=f'standard-ONNX form of the EAN layers (default {EAN.export_form})')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (as tools/test.py)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    if not args.out.endswith('.onnx'):
        raise InputError(f'--out must be a .onnx file, got {args.out!r}')
    if args.opset < 18:
        raise InputError(f'--opset {args.opset}: torch\'s exporter writes opset 18 or newer')
    if args.batch_size < 1:
        raise InputError(f'--batch-size must be at least 1, got {args.batch_size}')
    detector = init_model(args.config, args.checkpoint, cfg_options=args.cfg_options,
                          strict=True)
    shape = tuple(args.shape) if args.shape else input_shape_of(detector.cfg)
    check_input_shape(detector.cfg, shape)
    start = time.perf_counter()
    print(f'[export] {type(detector).__name__} of {args.config}, input {args.batch_size}x3x'
          f'{shape[0]}x{shape[1]}' + (' (dynamic batch)' if args.dynamic_batch else ''),
          flush=True)
    with ean_export_form(detector, args.ean_export_form):
        export_onnx(detector, args.out, shape, args.batch_size, args.dynamic_batch, args.opset)
    runtime = OnnxDetector(args.out)
    dets, labels = runtime(torch.zeros(args.batch_size, 3, *shape))
    print(f'[export] wrote {args.out} ({osp.getsize(args.out) / 2**20:.1f} MiB, opset '
          f'{args.opset}) in {time.perf_counter() - start:.0f} s; checked with onnx.checker; '
          f'onnxruntime runs it: dets {tuple(dets.shape)}, labels {tuple(labels.shape)}')
    return args.out


if __name__ == '__main__':
    exit_on_input_error(main)
