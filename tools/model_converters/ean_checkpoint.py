r"""Backbone-only files from classifier (training) checkpoints.

    # finished classifier training checkpoint -> small backbone-only file for detection configs
    # (init_cfg=dict(type='Pretrained', checkpoint=OUT, prefix='backbone.'))
    python tools/model_converters/ean_checkpoint.py backbone IN OUT [--keep-head]

Options: ``--force`` (overwrite OUT), ``--verbose`` (list every key). An MMEngine / MMPreTrain
training checkpoint (``meta``, ``state_dict``, ``optimizer``, ``message_hub``, ...) becomes
``{'meta', 'state_dict': backbone.* tensors}``, about half the size. Files are read with
``torch.load(weights_only=True)`` (MMEngine's own types allow-listed); a refused conversion exits
1 with an ``error:`` line and writes nothing. Written files hold only tensors and plain data.

A plain checkpoint needs no conversion to start an EAN backbone: ``init_cfg=dict(type=
'Pretrained', ...)`` starts it as the plain network (docs/weights.md).
"""
import argparse
import os.path as osp
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import torch

import ean_mm
from ean_mm.checkpoint import (check_output_path, compact_tensor, file_sha256, format_keys,
                               load_checkpoint_file, plain_data, save_checkpoint,
                               split_checkpoint)
from ean_mm.utils import InputError

BACKBONE_PREFIX = 'backbone.'
_BN_BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')


@dataclass
class TensorCount:
    """Sizes of a state dict: tensors, parameter values and buffer values (BN statistics)."""
    tensors: int = 0
    parameters: int = 0
    buffers: int = 0

    @classmethod
    def of(cls, state_dict: Mapping[str, torch.Tensor]) -> 'TensorCount':
        count = cls()
        for key, value in state_dict.items():
            count.tensors += 1
            if key.rsplit('.', 1)[-1] in _BN_BUFFERS:
                count.buffers += value.numel()
            else:
                count.parameters += value.numel()
        return count

    def __str__(self) -> str:
        return (f'{self.tensors} tensors, {self.parameters:,} parameters '
                f'(+{self.buffers:,} BN buffer values)')


@dataclass
class ConversionReport:
    """What a conversion did. ``format()`` (or ``str()``) gives the printed report.

    Keys in ``kept`` / ``dropped`` are output / source state-dict keys.
    """
    job: str
    source: str = '<in-memory>'
    output: Optional[str] = None
    #: output key -> source key, for every tensor copied from the source
    kept: 'OrderedDict[str, str]' = field(default_factory=OrderedDict)
    #: source state-dict keys not written
    dropped: List[str] = field(default_factory=list)
    #: top-level checkpoint entries not written (optimizer, message_hub, ...)
    dropped_entries: List[str] = field(default_factory=list)
    before: TensorCount = field(default_factory=TensorCount)
    after: TensorCount = field(default_factory=TensorCount)
    size_before: Optional[int] = None
    size_after: Optional[int] = None
    details: List[str] = field(default_factory=list)  # compact listing lines
    notes: List[str] = field(default_factory=list)

    def format(self, verbose: bool = False) -> str:
        arrow = f' -> {self.output}' if self.output else ''
        lines = [f'[{self.job}] {self.source}{arrow}']
        lines.append(f'  source state dict: {self.before}')
        lines.append(f'  output state dict: {self.after}')
        lines.extend('  ' + line for line in self.details)
        if self.dropped:
            lines.append(f'  dropped from the state dict: {_prefix_summary(self.dropped)}')
        if self.dropped_entries:
            lines.append('  dropped top-level entries: ' + ', '.join(self.dropped_entries))
        if self.size_before is not None or self.size_after is not None:
            lines.append(f'  file size: {_size(self.size_before)} -> {_size(self.size_after)}')
        lines.extend(f'  note: {note}' for note in self.notes)
        if verbose:
            lines.append('  copied (output <- source):')
            lines.extend(f'    {out} <- {src}' for out, src in self.kept.items())
            if self.dropped:
                lines.append('  dropped:')
                lines.extend(f'    {key}' for key in self.dropped)
        return '\n'.join(lines)

    def __str__(self) -> str:
        return self.format()


def _size(num_bytes: Optional[int]) -> str:
    if num_bytes is None:
        return '?'
    return f'{num_bytes / 2**20:.1f} MiB ({num_bytes:,} bytes)'


def _prefix_summary(keys: Iterable[str]) -> str:
    counts: 'OrderedDict[str, int]' = OrderedDict()
    for key in keys:
        prefix = key.split('.', 1)[0]
        counts[prefix] = counts.get(prefix, 0) + 1
    return ', '.join(f'{prefix}.* ({n} tensors)' for prefix, n in counts.items())


def _base_meta(job: str, source: str, source_path: Optional[str],
               source_meta: Optional[dict]) -> dict:
    meta: Dict[str, Any] = {'converted_by': f'ean_mm {ean_mm.__version__} ean_checkpoint.py {job}',
                            'source': source}
    if source_path is not None:
        meta['source_sha256'] = file_sha256(source_path)
    if source_meta:
        plain = plain_data(source_meta)
        if plain:
            meta['source_meta'] = plain
    return meta


def extract_backbone(checkpoint: Any,
                     keep_head: bool = False,
                     source: str = '<in-memory>',
                     source_path: Optional[str] = None) -> Tuple[dict, ConversionReport]:
    """Backbone-only checkpoint from a (training) checkpoint with ``backbone.*`` keys.

    Args:
        checkpoint: The loaded checkpoint (``{'state_dict': ..., 'meta': ..., ...}`` or flat).
        keep_head: Also keep the classifier: ``neck.*`` and ``head.*``.
        source: Name of the source used in messages and ``meta['source']``.
        source_path: File to hash into ``meta['source_sha256']`` (optional).

    Returns:
        ``({'meta': ..., 'state_dict': ...}, report)``; the state dict keeps the ``backbone.``
        prefix (what ``init_cfg=dict(type='Pretrained', prefix='backbone.')`` expects).
    """
    state_dict, dropped_entries, source_meta, notes = split_checkpoint(checkpoint, source)
    if not any(k.startswith(BACKBONE_PREFIX) for k in state_dict):
        raise InputError(
            f"{source}: has no '{BACKBONE_PREFIX}*' keys, so it is no MMPreTrain/MMDetection "
            f'model checkpoint ({len(state_dict)} tensors; keys: {format_keys(state_dict)}). '
            'A plain (e.g. torchvision) checkpoint needs no conversion: init_cfg=dict(type='
            "'Pretrained', checkpoint=...) loads it into EAN backbones too.")
    prefixes = (BACKBONE_PREFIX, 'neck.', 'head.') if keep_head else (BACKBONE_PREFIX, )
    out_sd: 'OrderedDict[str, torch.Tensor]' = OrderedDict(
        (k, compact_tensor(v)) for k, v in state_dict.items() if k.startswith(prefixes))
    report = ConversionReport(job='backbone', source=source, notes=notes,
                              dropped_entries=dropped_entries)
    report.kept = OrderedDict((k, k) for k in out_sd)
    report.dropped = [k for k in state_dict if k not in out_sd]
    report.before = TensorCount.of(state_dict)
    report.after = TensorCount.of(out_sd)
    for prefix in prefixes:
        part = OrderedDict((k, v) for k, v in out_sd.items() if k.startswith(prefix))
        if part or prefix == BACKBONE_PREFIX:
            report.details.append(f'kept {prefix}*: {TensorCount.of(part)}')
    meta = _base_meta('backbone', source, source_path, source_meta)
    meta.update(kept=[p + '*' for p in prefixes], num_tensors=report.after.tensors,
                num_parameters=report.after.parameters,
                dropped_state_dict_keys=len(report.dropped), dropped_entries=dropped_entries)
    return {'meta': meta, 'state_dict': out_sd}, report


def backbone_only_file(in_path: str, out_path: str, keep_head: bool = False,
                       force: bool = False) -> ConversionReport:
    """:func:`extract_backbone` from file ``in_path`` to file ``out_path``."""
    check_output_path(in_path, out_path, force)
    checkpoint = load_checkpoint_file(in_path)
    new, report = extract_backbone(checkpoint, keep_head=keep_head,
                                   source=osp.abspath(in_path), source_path=in_path)
    del checkpoint
    report.output = osp.abspath(out_path)
    report.size_before = osp.getsize(in_path)
    report.size_after = save_checkpoint(new, out_path)
    return report


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    jobs = parser.add_subparsers(dest='job', required=True, metavar='JOB')

    def add_common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument('src', metavar='IN', help='input checkpoint')
        sub.add_argument('dst', metavar='OUT', help='output checkpoint (parent dirs are created)')
        sub.add_argument('--force', action='store_true', help='overwrite OUT if it exists')
        sub.add_argument('--verbose', '-v', action='store_true', help='list every key')

    backbone = jobs.add_parser(
        'backbone', help='keep only backbone.* of a classifier (training) checkpoint',
        description='Write {meta, state_dict: backbone.* tensors (prefix kept)} from an '
        'MMEngine/MMPreTrain checkpoint; drops optimizer, message_hub, param_schedulers, head.')
    add_common(backbone)
    backbone.add_argument('--keep-head', action='store_true',
                          help='also keep the classifier (neck.* and head.*)')

    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        report = backbone_only_file(args.src, args.dst, keep_head=args.keep_head,
                                    force=args.force)
    except InputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(report.format(verbose=args.verbose))
    return 0


if __name__ == '__main__':
    sys.exit(main())
