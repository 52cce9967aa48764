r"""Convert the MobileNeXt authors' ImageNet checkpoint into an mmpretrain classifier checkpoint.

    python tools/model_converters/mobilenext_official.py SRC DST [--widen-factor 1.0] [--force]

SRC: the file their code writes or publishes (the layout of ``yitu-opensource/MobileNeXt``
``mobilenext/codebase/models/mnext.py`` @ 94ac67d, which ``houqb/ssdlite-pytorch-mobilenext``
loads: ``features.*`` with each block's convs, BNs and ReLU6s at their own indices of one flat
``features.i.conv``, and ``classifier.1.*``): a bare state dict, or one under ``state_dict``, with
or without DDP's ``module.`` prefix; read with ``torch.load(weights_only=True)``. DST: ``{'meta', 'state_dict'}`` with ``backbone.*``
(``ean_mm.MobileNeXt``) and ``head.fc.*``, for ``configs/pretrain/mobilenext_in1k.py`` (same
logits as their model); the SSDLite configs load its ``backbone.*``, EAN, SE and CA twins
included. A file that does not fit (another network or width, a truncated file) is refused with
the mismatching keys named, and nothing is written.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

import ean_mm
from ean_mm.checkpoint import (check_output_path, file_sha256, load_checkpoint_file,
                               save_checkpoint, split_checkpoint)
from ean_mm.checkpoint.mobilenext_official import convert_mobilenext_official
from ean_mm.utils import InputError


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help="the authors' checkpoint")
    parser.add_argument('dst', help='output mmpretrain checkpoint (parent dirs are created)')
    parser.add_argument('--widen-factor', type=float, default=1.0,
                        help='width multiplier of the checkpoint (default 1.0)')
    parser.add_argument('--force', action='store_true', help='overwrite DST if it exists')
    return parser.parse_args(argv)


def convert_file(src: str, dst: str, widen_factor: float = 1.0, force: bool = False) -> List[str]:
    """Convert ``src`` into ``dst``; returns the report lines. Writes nothing on an error."""
    check_output_path(src, dst, force)
    state, _, _, notes = split_checkpoint(load_checkpoint_file(src), src)
    converted, more = convert_mobilenext_official(state, widen_factor, source=src)
    meta = dict(converted_by=f'ean_mm {ean_mm.__version__} mobilenext_official.py',
                source=osp.abspath(src), source_sha256=file_sha256(src),
                widen_factor=widen_factor, config='configs/pretrain/mobilenext_in1k.py')
    size = save_checkpoint({'meta': meta, 'state_dict': converted}, dst)
    return notes + more + [f'wrote {dst} ({size / 2**20:.1f} MiB, {len(converted)} tensors)']


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        lines = convert_file(args.src, args.dst, args.widen_factor, args.force)
    except InputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
