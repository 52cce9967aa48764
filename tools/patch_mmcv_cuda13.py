"""Patch mmcv's source release where it does not compile with CUDA 13 / torch 2.13.

    python tools/patch_mmcv_cuda13.py MMCV_SOURCE_DIR

Each patch replaces one exact text in one file and is applied once: a file already patched is
left as it is, a file whose text is neither the original nor the patched one stops the script
(another mmcv version: check the patch against it). Upstream reports: open-mmlab/mmcv #3308,
#3310 (builds with CUDA 13 fail).
"""
import sys
from pathlib import Path
from typing import List, NamedTuple


class Patch(NamedTuple):
    path: str  # relative to the source folder
    original: str
    patched: str
    why: str


PATCHES: List[Patch] = []


def apply(source: Path) -> None:
    for patch in PATCHES:
        file = source / patch.path
        text = file.read_text()
        if patch.patched in text and patch.original not in text:
            print(f'[patch_mmcv_cuda13] {patch.path}: already patched')
            continue
        if text.count(patch.original) != 1:
            raise SystemExit(f'[patch_mmcv_cuda13] {patch.path}: the text to patch is not there '
                             'once; not the mmcv release these patches are for')
        file.write_text(text.replace(patch.original, patch.patched))
        print(f'[patch_mmcv_cuda13] {patch.path}: {patch.why}')
    print(f'[patch_mmcv_cuda13] {len(PATCHES)} patch(es) in place')


if __name__ == '__main__':
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / 'setup.py').is_file():
        raise SystemExit(__doc__)
    apply(Path(sys.argv[1]))
