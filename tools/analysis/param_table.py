"""Print parameter counts of ean_mm's models beside the EAN paper's (``ean_mm.paper``).

    python tools/analysis/param_table.py [--format markdown|plain]

Classifiers are mmpretrain ``ImageClassifier`` s (global average pooling + linear head, 1000
classes) as in the paper's Table 3; detectors are built from ``configs/`` (Tables 4 and 5).
This is the table in README.md ("Parameter counts").
"""
import argparse
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import ean_mm  # noqa: F401  (registers ean_mm's components)
from ean_mm.paper import CLASSIFIERS, DETECTORS, classifier_cfg

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
Row = Tuple[str, int, Optional[float], str]


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def classifier_rows() -> List[Row]:
    init_default_scope('mmpretrain')
    return [(f'{p.label} classifier', count(MODELS.build(classifier_cfg(name))),
             p.paper.params_m, 'Table 3') for name, p in CLASSIFIERS.items() if p.paper]


def detector_rows() -> List[Row]:
    init_default_scope('mmdet')
    rows = []
    for name, paper in DETECTORS.items():
        model_cfg = Config.fromfile(str(CONFIGS / f'{name}.py')).model
        model_cfg.backbone.init_cfg = None  # counting needs no pretrained weights
        rows.append((f'{name}.py', count(MODELS.build(model_cfg)),
                     paper.params_m if paper else None, paper.table if paper else '-'))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--format', choices=['markdown', 'plain'], default='markdown')
    args = parser.parse_args()
    header = ('model', 'params', 'params (M)', 'paper (M)', 'source')
    lines = [header]
    for name, n, paper, ref in classifier_rows() + detector_rows():
        lines.append((name, f'{n:,}', f'{n / 1e6:.2f}', f'{paper:.2f}' if paper else '-', ref))
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
