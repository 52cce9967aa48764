#!/usr/bin/env python
"""Generate small synthetic data sets in the real COCO, PASCAL VOC and ImageNet on-disk formats.

The images show coloured geometric shapes (circle, square, triangle) on a noisy, textured
background. Detection images hold several non-overlapping shapes with a box tight around each
one; classification images hold one dominant shape whose kind is the label. Stock MMDetection
(``CocoDataset``, ``VOCDataset``) and MMPreTrain (``ImageNet``, ``CustomDataset``) datasets load
the output unchanged, so stock configs can be trained and evaluated on it in minutes on a CPU.

Layout written under ``OUT_DIR`` (each format only when requested)::

    coco/annotations/instances_{train,val}2017.json   coco/{train,val}2017/*.jpg
    VOCdevkit/VOC{2007,2012}/Annotations/*.xml
    VOCdevkit/VOC{2007,2012}/JPEGImages/*.jpg
    VOCdevkit/VOC{2007,2012}/ImageSets/Main/{train,val,trainval,test}.txt
    imagenet/{train,val}/<class>/*.JPEG               imagenet/meta/{train,val}.txt

Every image is drawn from its own random stream, seeded by ``(seed, data set, split, index)``,
so the output is byte-identical for the same arguments, and raising ``--num-train`` keeps the
images that a smaller run wrote.

Example::

    python tools/misc/make_synthetic_data.py data/synthetic --formats coco voc \\
        --num-train 200 --num-val 50 --img-size 320 --classes person bicycle car
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import shutil
import sys
import xml.etree.ElementTree as ET
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw

# The shape kinds, in the order in which ``classes`` names them: the k-th class is the k-th kind.
# Alphabetical on purpose: MMPreTrain's folder scan (which sorts folder names) then gives the
# same labels as meta/*.txt.
SHAPE_KINDS: Tuple[str, ...] = ('circle', 'square', 'triangle')
DEFAULT_CLASSES: Tuple[str, ...] = SHAPE_KINDS
FORMATS: Tuple[str, ...] = ('coco', 'voc', 'imagenet')

# One saturated colour per kind (jittered per object): colour and shape agree, which makes the
# task easy enough for a small detector to learn within minutes on a CPU.
KIND_COLORS: Dict[str, Tuple[int, int, int]] = {
    'circle': (230, 40, 40), 'square': (40, 90, 230), 'triangle': (40, 190, 60)}

MIN_IMG_SIDE = 32          # below this, shapes shrink to a few pixels and boxes degenerate
MIN_SHAPE_RADIUS = 4.0     # pixels; keeps every shape at least a few pixels across
DET_OBJECTS = (2, 5)       # objects per detection image (inclusive range)
DET_RADIUS = (0.07, 0.18)  # detection shape radius as a fraction of the shorter image side
CLS_RADIUS = (0.22, 0.40)  # classification shape radius, same unit
MAX_ROTATION_DEG = 30.0    # a square stays a square, not a diamond
JPEG_QUALITY = 95
MARKER = '.synthetic_data.json'  # marks a tree as ours, so a rerun may replace it

# Fixed stream ids: part of every image's seed, so that the data sets differ from each other.
_STREAMS = {'coco': 1, 'voc2007': 2, 'voc2012': 3, 'imagenet': 4}
_SPLITS = {'train': 1, 'val': 2, 'test': 3}


class ShapeInstance(NamedTuple):
    """One drawn shape: its class index, tight box and outline, all in pixel units.

    A NamedTuple rather than a dataclass: dataclasses need the module in ``sys.modules``, which
    is not the case when tests load this file by path with importlib.
    """

    label: int
    box: Tuple[int, int, int, int]  # left, top, right, bottom; right/bottom exclusive
    area: int                       # number of painted pixels
    polygon: List[Tuple[float, float]]


def _unit_polygon(kind: str) -> np.ndarray:
    """Vertices (N, 2) of ``kind`` centred at 0 with the farthest vertex at distance 1.

    A polygon for every kind, the circle included, so the drawn pixels and the COCO
    segmentation come from the same outline.
    """
    corners = {'circle': 64, 'square': 4, 'triangle': 3}[kind]
    phase = np.pi / 4 if kind == 'square' else -np.pi / 2
    t = phase + np.arange(corners) * 2 * np.pi / corners
    pts = np.stack([np.cos(t), np.sin(t)], axis=1)
    return pts / np.linalg.norm(pts, axis=1).max()


_UNIT_POLYGONS: Dict[str, np.ndarray] = {k: _unit_polygon(k) for k in SHAPE_KINDS}


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A muted, textured background: gradient + smooth blobs + pixel noise, uint8 (H, W, 3).

    The texture keeps the task from being a plain threshold, and the low saturation keeps the
    shapes clearly visible on top of it.
    """
    base = rng.uniform(70, 180) + rng.uniform(-20, 20, size=3)
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None, None]
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :, None]
    grad = rng.uniform(-25, 25, size=(2, 3)).astype(np.float32)
    img = base.astype(np.float32) + xs * grad[0] + ys * grad[1]
    # Smooth blobs: a coarse random grid, upsampled bilinearly by PIL.
    coarse = rng.uniform(0, 255, size=(6, 6, 3)).astype(np.uint8)
    blobs = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR))
    img = img + (blobs.astype(np.float32) - 127.5) * 0.15
    return np.clip(img, 0, 255)


def _add_noise(rng: np.random.Generator, img: np.ndarray) -> Image.Image:
    """Add sensor-like Gaussian noise to the float image and convert it to an RGB PIL image."""
    noisy = img + rng.normal(0.0, 6.0, size=img.shape).astype(np.float32)
    return Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8), 'RGB')


def _shape_color(rng: np.random.Generator, kind: str) -> Tuple[int, int, int]:
    """The kind's colour with a small per-object jitter."""
    jitter = rng.integers(-25, 26, size=3)
    return tuple(int(c) for c in np.clip(np.array(KIND_COLORS[kind]) + jitter, 0, 255))


def _draw_shape(rng: np.random.Generator, canvas: Image.Image, label: int, cx: float, cy: float,
                radius: float) -> Optional[ShapeInstance]:
    """Draw shape kind ``label`` on ``canvas`` and measure its tight box on a separate mask.

    The box comes from the rasterised pixels rather than the polygon, so it is tight to the
    pixel whatever PIL's rounding does. Returns None if the shape painted no pixel.
    """
    kind = SHAPE_KINDS[label]
    angle = np.deg2rad(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = _UNIT_POLYGONS[kind] @ rot.T * radius + np.array([cx, cy])
    polygon = [(round(float(x), 2), round(float(y), 2)) for x, y in pts]

    mask = Image.new('L', canvas.size, 0)
    ImageDraw.Draw(mask).polygon(polygon, fill=255)
    box = mask.getbbox()
    if box is None:
        return None
    ImageDraw.Draw(canvas).polygon(polygon, fill=_shape_color(rng, kind))
    area = int(np.count_nonzero(np.asarray(mask)))
    return ShapeInstance(label=label, box=box, area=area, polygon=polygon)


def _image_rng(seed: int, stream: str, split: str, index: int) -> np.random.Generator:
    """An independent generator per image, so images do not depend on the counts asked for."""
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAMS[stream], _SPLITS[split],
                                                         index]))


def make_detection_image(rng: np.random.Generator, size: Tuple[int, int],
                         num_classes: int) -> Tuple[Image.Image, List[ShapeInstance]]:
    """An image with 2-5 non-overlapping shapes of random kinds, sizes and positions.

    Shapes never overlap (their circumscribed circles are kept apart), so every box is tight
    around a fully visible shape and no annotation is occluded.
    """
    width, height = size
    short = min(width, height)
    img = _background(rng, width, height)
    # Draw on a float background first, then add noise over shapes and background alike.
    canvas = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), 'RGB')
    placed: List[Tuple[float, float, float]] = []
    instances: List[ShapeInstance] = []
    target = int(rng.integers(DET_OBJECTS[0], DET_OBJECTS[1] + 1))
    for _ in range(target):
        label = int(rng.integers(num_classes))
        radius = max(MIN_SHAPE_RADIUS, rng.uniform(*DET_RADIUS) * short)
        # A bounded number of tries: a crowded image simply keeps fewer objects.
        for _attempt in range(30):
            cx = rng.uniform(radius + 1, width - radius - 1)
            cy = rng.uniform(radius + 1, height - radius - 1)
            if all((cx - x) ** 2 + (cy - y) ** 2 > (radius + r + 3) ** 2 for x, y, r in placed):
                break
        else:
            continue
        inst = _draw_shape(rng, canvas, label, cx, cy, radius)
        if inst is not None:
            placed.append((cx, cy, radius))
            instances.append(inst)
    return _add_noise(rng, np.asarray(canvas, dtype=np.float32)), instances


def make_classification_image(rng: np.random.Generator, size: Tuple[int, int],
                              label: int) -> Tuple[Image.Image, ShapeInstance]:
    """An image dominated by one large shape of kind ``label`` near the centre."""
    width, height = size
    short = min(width, height)
    img = _background(rng, width, height)
    canvas = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), 'RGB')
    radius = max(MIN_SHAPE_RADIUS, rng.uniform(*CLS_RADIUS) * short)
    cx = rng.uniform(radius + 1, width - radius - 1)
    cy = rng.uniform(radius + 1, height - radius - 1)
    inst = _draw_shape(rng, canvas, label, cx, cy, radius)
    assert inst is not None  # a radius >= MIN_SHAPE_RADIUS always paints pixels
    return _add_noise(rng, np.asarray(canvas, dtype=np.float32)), inst


def _save_jpeg(img: Image.Image, path: str) -> None:
    # Fixed quality and no optional metadata: PIL's encoder is then byte-for-byte reproducible.
    img.save(path, format='JPEG', quality=JPEG_QUALITY)


def _prepare_root(root: str, config: dict) -> None:
    """Make ``root`` an empty tree of ours, replacing an earlier synthetic tree if present.

    A tree without our marker is left alone and reported, so a real data set is never deleted.
    The marker also records the arguments the data were made with.
    """
    if osp.isdir(root) and os.listdir(root):
        if not osp.isfile(osp.join(root, MARKER)):
            raise FileExistsError(f'{root} exists, is not empty and was not written by this tool '
                                  f'(no {MARKER}); refusing to overwrite it')
        shutil.rmtree(root)
    os.makedirs(root, exist_ok=True)
    with open(osp.join(root, MARKER), 'w') as f:
        json.dump(config, f, indent=2, sort_keys=True)


def _write_coco(root: str, classes: Sequence[str], size: Tuple[int, int],
                counts: Dict[str, int], seed: int) -> Dict[str, Union[str, int]]:
    """Write ``coco/`` with train2017/val2017 images and instances_*.json."""
    ann_dir = osp.join(root, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    # COCO category ids start at 1: with real COCO names first, the ids match real COCO too.
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(classes)]
    info: Dict[str, Union[str, int]] = dict(root=root)
    for split, num in counts.items():
        img_dir = osp.join(root, f'{split}2017')
        os.makedirs(img_dir, exist_ok=True)
        images, annotations = [], []
        for idx in range(num):
            img_id = idx + 1
            file_name = f'{img_id:012d}.jpg'  # COCO's own naming: zero-padded image id
            img, insts = make_detection_image(_image_rng(seed, 'coco', split, idx), size,
                                              len(classes))
            _save_jpeg(img, osp.join(img_dir, file_name))
            images.append(dict(id=img_id, file_name=file_name, width=size[0], height=size[1]))
            for inst in insts:
                x0, y0, x1, y1 = inst.box
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=img_id, category_id=inst.label + 1,
                    bbox=[x0, y0, x1 - x0, y1 - y0], area=float(inst.area), iscrowd=0,
                    segmentation=[[c for xy in inst.polygon for c in xy]]))
        ann_file = osp.join(ann_dir, f'instances_{split}2017.json')
        with open(ann_file, 'w') as f:
            json.dump(dict(info=dict(description='ean_mm synthetic shapes', version='1.0'),
                           licenses=[], images=images, annotations=annotations,
                           categories=categories), f)
        info[f'{split}_ann_file'] = ann_file
        info[f'{split}_img_dir'] = img_dir
        info[f'num_{split}_images'] = len(images)
        info[f'num_{split}_objects'] = len(annotations)
    return info


def _voc_xml(year: str, file_name: str, size: Tuple[int, int], classes: Sequence[str],
             insts: Sequence[ShapeInstance]) -> ET.ElementTree:
    """A VOC annotation element tree for one image."""
    def sub(parent: ET.Element, tag: str, text: Union[str, int, None] = None) -> ET.Element:
        el = ET.SubElement(parent, tag)
        if text is not None:
            el.text = str(text)
        return el

    root = ET.Element('annotation')
    sub(root, 'folder', f'VOC{year}')
    sub(root, 'filename', file_name)
    source = sub(root, 'source')
    sub(source, 'database', 'ean_mm synthetic shapes')
    sub(source, 'annotation', f'PASCAL VOC{year}')
    size_el = sub(root, 'size')
    sub(size_el, 'width', size[0])
    sub(size_el, 'height', size[1])
    sub(size_el, 'depth', 3)
    sub(root, 'segmented', 0)
    for inst in insts:
        obj = sub(root, 'object')
        sub(obj, 'name', classes[inst.label])
        sub(obj, 'pose', 'Unspecified')
        sub(obj, 'truncated', 0)
        sub(obj, 'difficult', 0)
        box = sub(obj, 'bndbox')
        x0, y0, x1, y1 = inst.box
        # VOC boxes are 1-based and inclusive: the first painted column c is written as c + 1
        # and the last one (x1 - 1, x1 being exclusive) as x1. MMDetection subtracts 1 again.
        for tag, value in (('xmin', x0 + 1), ('ymin', y0 + 1), ('xmax', x1), ('ymax', y1)):
            sub(box, tag, value)
    tree = ET.ElementTree(root)
    ET.indent(tree, space='\t')
    return tree


def _write_voc(root: str, classes: Sequence[str], size: Tuple[int, int],
               counts: Dict[str, int], seed: int) -> Dict[str, Union[str, int]]:
    """Write ``VOCdevkit/VOC2007`` and ``VOC2012``: train, val and a separate test split each.

    ``trainval`` is train + val, as in VOC, and ``test`` has its own images (as many as val),
    so the usual "train on trainval, test on test" configs do not test on training images.
    """
    info: Dict[str, Union[str, int]] = dict(root=root)
    for year in ('2007', '2012'):
        year_root = osp.join(root, f'VOC{year}')
        ann_dir = osp.join(year_root, 'Annotations')
        img_dir = osp.join(year_root, 'JPEGImages')
        set_dir = osp.join(year_root, 'ImageSets', 'Main')
        for d in (ann_dir, img_dir, set_dir):
            os.makedirs(d, exist_ok=True)
        ids: Dict[str, List[str]] = {}
        num_objects = 0
        serial = 0
        for split in ('train', 'val', 'test'):
            ids[split] = []
            num = counts['val' if split == 'test' else split]
            for idx in range(num):
                serial += 1
                # VOC's own id styles: '000001' for 2007, '2012_000001' for 2012.
                img_id = f'{serial:06d}' if year == '2007' else f'{year}_{serial:06d}'
                img, insts = make_detection_image(_image_rng(seed, f'voc{year}', split, idx),
                                                  size, len(classes))
                _save_jpeg(img, osp.join(img_dir, f'{img_id}.jpg'))
                _voc_xml(year, f'{img_id}.jpg', size, classes, insts).write(
                    osp.join(ann_dir, f'{img_id}.xml'), encoding='utf-8', xml_declaration=False)
                ids[split].append(img_id)
                num_objects += len(insts)
        ids['trainval'] = ids['train'] + ids['val']
        for split in ('train', 'val', 'trainval', 'test'):
            set_file = osp.join(set_dir, f'{split}.txt')
            with open(set_file, 'w') as f:
                f.write(''.join(f'{i}\n' for i in ids[split]))
            info[f'VOC{year}_{split}_set'] = set_file
            info[f'num_VOC{year}_{split}_images'] = len(ids[split])
        info[f'num_VOC{year}_objects'] = num_objects
    return info


def _write_imagenet(root: str, classes: Sequence[str], size: Tuple[int, int],
                    counts: Dict[str, int], seed: int) -> Dict[str, Union[str, int]]:
    """Write ``imagenet/{train,val}/<class>/*.JPEG`` and ``meta/{train,val}.txt``.

    Classes take turns (image i has class i mod K), so every split is balanced. Meta labels are
    indices into ``classes`` in the given order; paths in them are relative to the split folder,
    as MMPreTrain's ``ImageNet(split=...)`` expects.
    """
    meta_dir = osp.join(root, 'meta')
    os.makedirs(meta_dir, exist_ok=True)
    info: Dict[str, Union[str, int]] = dict(root=root)
    for split, num in counts.items():
        split_dir = osp.join(root, split)
        for name in classes:  # every class folder exists, even an empty one
            os.makedirs(osp.join(split_dir, name), exist_ok=True)
        lines = []
        for idx in range(num):
            label = idx % len(classes)
            rel = f'{classes[label]}/{split}_{idx:06d}.JPEG'
            img, _ = make_classification_image(_image_rng(seed, 'imagenet', split, idx), size,
                                               label)
            _save_jpeg(img, osp.join(split_dir, rel))
            lines.append(f'{rel} {label}\n')
        ann_file = osp.join(meta_dir, f'{split}.txt')
        with open(ann_file, 'w') as f:
            f.write(''.join(lines))
        info[f'{split}_dir'] = split_dir
        info[f'{split}_ann_file'] = ann_file
        info[f'num_{split}_images'] = num
    return info


def _check_classes(classes: Sequence[str]) -> List[str]:
    """Validate class names; raise ValueError with a readable message."""
    classes = list(classes)
    if not classes:
        raise ValueError('at least one class is required')
    if len(classes) > len(SHAPE_KINDS):
        raise ValueError(f'{len(classes)} classes given, but only {len(SHAPE_KINDS)} shape kinds '
                         f'exist ({", ".join(SHAPE_KINDS)})')
    if len(set(classes)) != len(classes):
        raise ValueError(f'class names must be unique, got {classes}')
    for name in classes:
        # Names become folder names (ImageNet) and XML text (VOC); ImageNet meta lines are
        # split at the last space, so inner spaces are fine but separators are not.
        if not name or name != name.strip() or any(c in name for c in '/\\\n\r\t'):
            raise ValueError(f'invalid class name {name!r}: it must be non-empty, without '
                             'path separators or surrounding white space')
    return classes


def _check_size(img_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """Normalise ``img_size`` (S or (W, H)) to (W, H); raise ValueError if unusable."""
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if len(size) != 2 or any(not isinstance(s, int) for s in size):
        raise ValueError(f'img_size must be one int or (width, height), got {img_size!r}')
    if min(size) < MIN_IMG_SIDE:
        raise ValueError(f'image sides must be at least {MIN_IMG_SIDE} pixels, got {size}')
    return size  # type: ignore[return-value]


def generate(out_dir: str,
             formats: Sequence[str] = FORMATS,
             num_train: int = 128,
             num_val: int = 32,
             img_size: Union[int, Sequence[int]] = 320,
             classes: Sequence[str] = DEFAULT_CLASSES,
             seed: int = 0) -> Dict[str, Dict[str, Union[str, int]]]:
    """Generate the synthetic data sets under ``out_dir``.

    Args:
        out_dir: Output folder; ``coco/``, ``VOCdevkit/`` and ``imagenet/`` are made inside it.
            An existing one of these is replaced only if this tool wrote it.
        formats: Any of ``'coco'``, ``'voc'``, ``'imagenet'``.
        num_train: Images in each train split (per VOC year for VOC).
        num_val: Images in each val split (and in each VOC test split).
        img_size: Image size, one int for square images or ``(width, height)``.
        classes: Class names; the k-th name labels the k-th kind of ``SHAPE_KINDS``.
        seed: Non-negative seed; the same arguments always give the same bytes.

    Returns:
        ``{format: {name: path or count}}`` for each written format, e.g.
        ``result['coco']['val_ann_file']`` or ``result['voc']['num_VOC2012_val_images']``.

    Raises:
        ValueError: on invalid arguments.
        FileExistsError: if a target folder holds data not written by this tool.
    """
    formats = list(dict.fromkeys(formats))  # drop repeats, keep order
    unknown = [f for f in formats if f not in FORMATS]
    if not formats or unknown:
        raise ValueError(f'formats must be a non-empty subset of {FORMATS}, got {formats}')
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be a positive integer, got {value!r}')
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
    classes = _check_classes(classes)
    size = _check_size(img_size)

    counts = dict(train=num_train, val=num_val)
    writers = dict(coco=('coco', _write_coco), voc=('VOCdevkit', _write_voc),
                   imagenet=('imagenet', _write_imagenet))
    result: Dict[str, Dict[str, Union[str, int]]] = {}
    for fmt in formats:
        sub_dir, writer = writers[fmt]
        root = osp.join(out_dir, sub_dir)
        _prepare_root(root, dict(format=fmt, num_train=num_train, num_val=num_val,
                                 img_size=list(size), classes=classes, seed=seed,
                                 shape_kinds=list(SHAPE_KINDS[:len(classes)])))
        result[fmt] = writer(root, classes, size, counts, seed)
    return result


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and validate the command line; errors exit through ``parser.error``."""
    parser = argparse.ArgumentParser(
        description='Generate synthetic shape data sets in COCO, PASCAL VOC and ImageNet '
                    'formats, loadable by stock MMDetection / MMPreTrain datasets.')
    parser.add_argument('out_dir', help='output folder (coco/, VOCdevkit/, imagenet/ inside)')
    parser.add_argument('--formats', nargs='+', choices=FORMATS, default=list(FORMATS),
                        help='formats to write (default: all)')
    parser.add_argument('--num-train', type=int, default=128,
                        help='images per train split (default: 128)')
    parser.add_argument('--num-val', type=int, default=32,
                        help='images per val split, and per VOC test split (default: 32)')
    parser.add_argument('--img-size', type=int, nargs='+', default=[320], metavar='S',
                        help='image size: S for S x S, or W H (default: 320)')
    parser.add_argument('--classes', nargs='+', default=list(DEFAULT_CLASSES), metavar='NAME',
                        help='class names; the k-th names the k-th shape kind of '
                             f'{", ".join(SHAPE_KINDS)} (default: {" ".join(DEFAULT_CLASSES)})')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    args = parser.parse_args(argv)

    # Validate here too, so that bad arguments give argparse's usage + message, not a traceback.
    if args.num_train < 1 or args.num_val < 1:
        parser.error('--num-train and --num-val must be positive')
    if args.seed < 0:
        parser.error('--seed must be non-negative')
    if len(args.img_size) not in (1, 2):
        parser.error('--img-size takes one value (S) or two (W H)')
    args.img_size = args.img_size[0] if len(args.img_size) == 1 else tuple(args.img_size)
    try:
        _check_size(args.img_size)
        _check_classes(args.classes)
    except ValueError as e:
        parser.error(str(e))
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, Union[str, int]]]:
    """Command-line entry point: generate, then print what was written."""
    args = parse_args(argv)
    try:
        result = generate(args.out_dir, formats=args.formats, num_train=args.num_train,
                          num_val=args.num_val, img_size=args.img_size, classes=args.classes,
                          seed=args.seed)
    except FileExistsError as e:
        sys.exit(f'error: {e}')
    print(f'classes: {", ".join(args.classes)} '
          f'(shape kinds: {", ".join(SHAPE_KINDS[:len(args.classes)])})')
    for fmt, info in result.items():
        print(f'[{fmt}] {info["root"]}')
        for key, value in info.items():
            if key != 'root':
                print(f'    {key}: {value}')
    return result


if __name__ == '__main__':
    main()
