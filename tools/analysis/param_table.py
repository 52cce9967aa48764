"""Print parameter counts of ean_mm's models beside the EAN paper's (``ean_mm.paper``).

    python tools/analysis/param_table.py [--format markdown|plain]

Classifiers are mmpretrain ``ImageClassifier`` s (global average pooling + linear head) with
1000 classes (Table 3) and 100 classes (Table 1, CIFAR-100); detectors are built from
``configs/`` (Tables 4 and 5, and the stock-recipe detectors the paper has not), and
SSDLite-MobileNeXt also with the authors' SSDLite taps. "vs plain twin": the parameters an
attention layer adds (EAN: ``4 C / G`` per block).
This is the table in docs/parameters.md ("Parameter counts").
"""
import argparse
import copy
from pathlib import Path
from typing import List, Optional, Tuple

from mmengine.config import Config

from ean_mm.benchmark import build_classifier, build_detector, config_spec, count_params
from ean_mm.paper import CLASSIFIERS, DETECTORS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
#: (label, params, paper's params in M or None, paper table or '-', plain twin's label or None)
Row = Tuple[str, int, Optional[float], str, Optional[str]]

#: The MobileNeXt authors' SSDLite features: 576 channels at stride 16, 1280 at stride 32
#: (inside blocks, before their final depthwise conv), as ``--cfg-options``.
AUTHORS_TAPS = {
    'model.backbone.out_indices': (5, 7), 'model.backbone.out_tap': 'pre_dw',
    'model.neck.in_channels': (576, 1280),
    'model.neck.out_channels': (576, 1280, 512, 256, 256, 128),
    'model.bbox_head.in_channels': (576, 1280, 512, 256, 256, 128)}


def classifier_rows() -> List[Row]:
    """Table 3 classifiers (1000 classes), then Table 1's (100 classes)."""
    rows = []
    for name, p in CLASSIFIERS.items():
        if p.paper:
            twin = f'{CLASSIFIERS[p.twin].label} classifier' if p.twin else None
            rows.append((f'{p.label} classifier', count_params(build_classifier(name)),
                         p.paper.params_m, 'Table 3', twin))
    for name, p in CLASSIFIERS.items():
        if p.cifar:
            twin = f'{CLASSIFIERS[p.twin].label}, 100 classes' if p.twin else None
            rows.append((f'{p.label}, 100 classes', count_params(build_classifier(name, 100)),
                         p.cifar.params_m, 'Table 1', twin))
    return rows


def detector_rows() -> List[Row]:
    """Every config of :data:`DETECTORS`; MobileNeXt ones also with the authors' taps."""
    rows = []
    for name, paper in DETECTORS.items():
        cfg = Config.fromfile(str(CONFIGS / f'{name}.py'))
        twin = config_spec(str(CONFIGS / f'{name}.py')).twin
        twin = Path(twin).name if twin else None
        variants = [(f'{name}.py', cfg, twin)]
        if 'mobilenext' in name:
            taps = copy.deepcopy(cfg)
            taps.merge_from_dict(AUTHORS_TAPS)
            variants.append((f"{name}.py, authors' taps", taps,
                             f"{twin}, authors' taps" if twin else None))
        for label, variant, twin_label in variants:
            rows.append((label, count_params(build_detector(variant)),
                         paper.params_m if paper else None, paper.table if paper else '-',
                         twin_label))
    return rows


def added_params(rows: List[Row]) -> List[Optional[int]]:
    """Per row, its parameters beyond its plain twin's (``None`` for a plain model)."""
    counts = {label: n for label, n, *_ in rows}
    return [None if twin is None else n - counts[twin] for _, n, _, _, twin in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--format', choices=['markdown', 'plain'], default='markdown')
    args = parser.parse_args()
    header = ('model', 'params', 'params (M)', 'vs plain twin', 'paper (M)', 'source')
    lines = [header]
    rows = classifier_rows() + detector_rows()
    for (name, n, paper, ref, _), added in zip(rows, added_params(rows)):
        lines.append((name, f'{n:,}', f'{n / 1e6:.2f}', '-' if added is None else f'{added:+,}',
                      f'{paper:.2f}' if paper else '-', ref))
    if args.format == 'markdown':
        print('| ' + ' | '.join(header) + ' |')
        print('|' + '---|' * len(header))
        for row in lines[1:]:
            print('| ' + ' | '.join(row) + ' |')
    else:
        widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
        for row in lines:
            print('  '.join(c.ljust(w) for c, w in zip(row, widths)))


if __name__ == '__main__':
    main()
