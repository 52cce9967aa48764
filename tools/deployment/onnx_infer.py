"""Detect objects in image files with an exported detector in onnxruntime or OpenVINO.

    python tools/deployment/onnx_infer.py FILE.onnx CONFIG IMAGE [IMAGE ...] [--out-dir DIR]
        [--score-thr 0.3] [--backend onnxruntime|openvino] [--threads N]
        [--cfg-options k=v ...]

Each image goes through the config's test pipeline and data preprocessor (resize, normalise,
pad to the file's input size); the detections scoring at least ``--score-thr``, scaled back to
the image, are printed and, with ``--out-dir``, drawn on it as ``tools/test.py --show-dir``
draws them.
"""
import argparse
import os
import os.path as osp
from typing import Dict, Optional, Sequence

from mmengine.config import DictAction

import ean_mm  # noqa: F401  (registers ean_mm's components)
from ean_mm.apis import dataset_classes, test_pipeline
from ean_mm.checkpoint import format_keys
from ean_mm.deploy import RUNTIMES, OnnxDetector, detections_to_list
from ean_mm.utils import InputError, exit_on_input_error, load_config


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('onnx', help='file written by tools/deployment/export_onnx.py')
    parser.add_argument('config', help='the config it was exported from')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--out-dir', help='write each image with its detections drawn here')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='print and draw the detections scoring at least this')
    parser.add_argument('--backend', choices=RUNTIMES, default=RUNTIMES[0],
                        help='the runtime that runs the file on the CPU (default: onnxruntime)')
    parser.add_argument('--threads', type=int, default=None,
                        help="intra-op threads (default: the runtime's own)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (as tools/test.py)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, dict]:
    from mmcv import imread
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import MODELS, VISUALIZERS, init_default_scope
    from mmengine.structures import InstanceData
    from mmdet.structures import DetDataSample
    args = parse_args(argv)
    for path in [args.onnx, *args.images]:
        if not osp.isfile(path):
            raise InputError(f'file not found: {path!r}')
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    detector = OnnxDetector(args.onnx, args.threads, args.backend)
    pipeline = Compose(test_pipeline(cfg))
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    classes = dataset_classes(cfg) or ()
    if detector.classes is not None and classes and tuple(classes) != detector.classes:
        raise InputError(
            f'{args.onnx} was exported for {len(detector.classes)} classes '
            f'({format_keys(detector.classes, 3)}); the test data set of {args.config} has '
            f'{len(classes)} ({format_keys(classes, 3)}). Give the config it was exported from.')
    visualizer = None
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        vis_cfg = dict(cfg.get('visualizer') or dict(type='DetLocalVisualizer'))
        vis_cfg.update(name='onnx_infer', vis_backends=[dict(type='LocalVisBackend')],
                       save_dir=args.out_dir)
        visualizer = VISUALIZERS.build(vis_cfg)
        visualizer.dataset_meta = dict(classes=classes)
    results: Dict[str, dict] = {}
    for image in args.images:
        batch = preprocessor(pseudo_collate([pipeline(dict(img_path=image, img_id=0))]), False)
        meta = batch['data_samples'][0].metainfo
        dets, labels = detector(batch['inputs'])
        boxes, scores, labels = detections_to_list(dets, labels)[0]
        sx, sy = meta.get('scale_factor', (1.0, 1.0))
        boxes = boxes / boxes.new_tensor([sx, sy, sx, sy])  # back to the image's pixels
        h, w = meta['ori_shape']
        boxes[:, 0::2].clamp_(0, w)
        boxes[:, 1::2].clamp_(0, h)
        shown = scores >= args.score_thr
        print(f'{image}: {len(scores)} detections, {int(shown.sum())} scoring >= '
              f'{args.score_thr}:')
        for box, score, label in zip(boxes[shown].tolist(), scores[shown].tolist(),
                                     labels[shown].tolist()):
            name = classes[label] if label < len(classes) else str(label)
            print(f'  {name:<16} {score:.3f}  [{box[0]:.1f}, {box[1]:.1f}, {box[2]:.1f}, '
                  f'{box[3]:.1f}]')
        result = dict(bboxes=boxes, scores=scores, labels=labels)
        if visualizer is not None:
            sample = DetDataSample(pred_instances=InstanceData(**result))
            out_file = osp.join(args.out_dir, osp.basename(image))
            visualizer.add_datasample(osp.basename(image), imread(image, channel_order='rgb'),
                                      data_sample=sample, draw_gt=False, show=False,
                                      pred_score_thr=args.score_thr, out_file=out_file)
            result['out_file'] = out_file
        results[image] = result
    return results


if __name__ == '__main__':
    exit_on_input_error(main)
