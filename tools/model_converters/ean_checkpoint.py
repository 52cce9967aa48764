r"""Convert checkpoints for EAN-ResNet.

    # finished classifier training checkpoint -> small backbone-only file for detection configs
    # (init_cfg=dict(type='Pretrained', checkpoint=OUT, prefix='backbone.'))
    python tools/model_converters/ean_checkpoint.py backbone IN OUT [--keep-head]

    # plain ResNet ImageNet checkpoint (mmpretrain or torchvision layout) -> EAN-ResNet init:
    # every ResNet tensor copied, EAN fresh (gn.weight=1, gn.bias=0, alpha=0, delta=0),
    # fc -> head.fc
    python tools/model_converters/ean_checkpoint.py resnet-to-ean IN OUT \
        [--layout auto|mmpretrain|torchvision] [--depth 50] [--ean-groups 64]

Common options: ``--force`` (overwrite OUT), ``--verbose`` (list every key). Files are read with
``torch.load(weights_only=True)`` (MMEngine's own types allow-listed); a refused conversion exits
1 with an ``error:`` line and writes nothing. Written files hold only tensors and plain data.

* ``backbone``: an MMEngine / MMPreTrain training checkpoint (``meta``, ``state_dict``,
  ``optimizer``, ``message_hub``, ...) -> ``{'meta', 'state_dict': backbone.* tensors}``.
* ``resnet-to-ean``: every tensor of a plain ResNet is copied under its own name (mmdet's,
  mmpretrain's and torchvision's ResNet names agree) after checking names and shapes against a
  fresh ``EANResNet``; EAN's own tensors come from that fresh model (checked to be
  ``gn.weight=1, gn.bias=0, alpha=0, delta=0``). A source with missing, extra (an EAN
  checkpoint, another depth or variant) or differently shaped tensors is refused with the keys
  named. The one tolerated gap is ``num_batches_tracked`` (absent from checkpoints written before
  torch 0.4.1), filled with 0 and reported.
"""
import argparse
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import os.path as osp

import torch

import ean_mm
from ean_mm.checkpoint import (check_output_path, compact_tensor, file_sha256, format_keys,
                               load_checkpoint_file, plain_data, save_checkpoint,
                               split_checkpoint)
from ean_mm.models import EAN, EANResNet
from ean_mm.utils import InputError, quiet_mmengine

BACKBONE_PREFIX = 'backbone.'
#: What a fresh EAN holds (paper Eqn 8: alpha, delta start at 0, so the layer returns 0.5 * X).
EAN_FRESH_VALUES: Dict[str, float] = {'gn.weight': 1.0, 'gn.bias': 0.0, 'alpha': 0.0, 'delta': 0.0}
LAYOUTS = ('auto', 'mmpretrain', 'torchvision')
RESNET_DEPTHS = {
    # (bottleneck blocks?, blocks per stage) -> depth, as in ResNet.arch_settings
    (False, (2, 2, 2, 2)): 18,
    (False, (3, 4, 6, 3)): 34,
    (True, (3, 4, 6, 3)): 50,
    (True, (3, 4, 23, 3)): 101,
    (True, (3, 8, 36, 3)): 152,
}
_BN_BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')
_BLOCK_KEY = re.compile(r'^layer(\d+)\.(\d+)\.')


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

    Keys in ``kept`` / ``initialised`` / ``dropped`` are output / source state-dict keys.
    """
    job: str
    source: str = '<in-memory>'
    output: Optional[str] = None
    layout: Optional[str] = None
    depth: Optional[int] = None
    ean_groups: Optional[int] = None
    #: output key -> source key, for every tensor copied from the source
    kept: 'OrderedDict[str, str]' = field(default_factory=OrderedDict)
    #: output keys holding freshly initialised tensors (EAN's own, missing num_batches_tracked)
    initialised: List[str] = field(default_factory=list)
    #: source state-dict keys not written (``backbone`` job only)
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
        if self.layout:
            lines.append(f'  source layout: {self.layout}')
        if self.depth is not None:
            lines.append(f'  EANResNet(depth={self.depth}, ean_groups={self.ean_groups})')
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
            if self.initialised:
                lines.append('  initialised:')
                lines.extend(f'    {key}' for key in self.initialised)
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
            'For a plain (e.g. torchvision) ResNet use the resnet-to-ean job.')
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


def detect_layout(state_dict: Mapping[str, torch.Tensor], layout: str = 'auto',
                  source: str = '<in-memory>') -> str:
    """``'mmpretrain'`` (``backbone.*`` keys) or ``'torchvision'`` (flat ``conv1.weight``...)."""
    if layout not in LAYOUTS:
        raise InputError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    has_backbone = any(k.startswith(BACKBONE_PREFIX) for k in state_dict)
    has_flat = any(k == 'conv1.weight' or _BLOCK_KEY.match(k) for k in state_dict)
    if layout == 'auto':
        if has_backbone:
            return 'mmpretrain'
        if has_flat:
            return 'torchvision'
        raise InputError(
            f"{source}: neither the mmpretrain layout ('backbone.*' keys) nor the torchvision "
            f"layout ('conv1.weight', 'layerX.Y.*'); keys: {format_keys(state_dict)}")
    if layout == 'mmpretrain' and not has_backbone:
        raise InputError(
            f"{source}: --layout mmpretrain, but there are no 'backbone.*' keys; keys: "
            f'{format_keys(state_dict)}')
    if layout == 'torchvision' and has_backbone:
        raise InputError(
            f"{source}: --layout torchvision, but there are 'backbone.*' keys (mmpretrain "
            f'layout); keys: {format_keys(state_dict)}')
    return layout


def _block_structure(state_dict: Mapping[str, Any]) -> Tuple[bool, Tuple[int, ...]]:
    blocks: Dict[int, int] = {}
    bottleneck = False
    for key in state_dict:
        match = _BLOCK_KEY.match(key)
        if match:
            stage, index = int(match.group(1)), int(match.group(2))
            blocks[stage] = max(blocks.get(stage, 0), index + 1)
            bottleneck = bottleneck or key[match.end():].startswith('conv3.')
    return bottleneck, tuple(blocks.get(i, 0) for i in range(1, max(blocks, default=0) + 1))


def infer_resnet_depth(state_dict: Mapping[str, Any]) -> Optional[int]:
    """ResNet depth from the blocks in ``layerX.Y.*`` keys (no prefix), or ``None``."""
    return RESNET_DEPTHS.get(_block_structure(state_dict))


def _describe_structure(state_dict: Mapping[str, Any]) -> str:
    bottleneck, blocks = _block_structure(state_dict)
    kind = 'Bottleneck' if bottleneck else 'BasicBlock'
    return f'{kind} blocks per stage {blocks}'


def fresh_ean_resnet_state_dict(depth: int, ean_groups: int = 64
                                ) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """State dict of a fresh ``EANResNet(depth, ean_groups)`` after ``init_weights()``.

    Returns:
        ``(state_dict, ean_keys)``: ``ean_keys`` are the keys of EAN's own tensors, each checked
        to hold :data:`EAN_FRESH_VALUES` (``gn.weight=1, gn.bias=0, alpha=0, delta=0``).
    """
    try:
        model = EANResNet(depth=depth, ean_groups=ean_groups)
    except (KeyError, ValueError) as err:
        raise InputError(f'cannot build EANResNet(depth={depth}, '
                                     f'ean_groups={ean_groups}): {err}') from err
    with quiet_mmengine():
        model.init_weights()
    state_dict = model.state_dict()
    ean_prefixes = tuple(name + '.' for name, module in model.named_modules()
                         if isinstance(module, EAN))
    ean_keys = [k for k in state_dict if k.startswith(ean_prefixes)]
    if len(ean_prefixes) != sum(_block_structure(state_dict)[1]) or not ean_keys:
        raise InputError(
            f'EANResNet(depth={depth}) has {len(ean_prefixes)} EAN layers, expected one per '
            'residual block; the converter does not know this model')
    for key in ean_keys:
        suffix = key[len(next(p for p in ean_prefixes if key.startswith(p))):]
        expected = EAN_FRESH_VALUES.get(suffix)
        if expected is None:
            raise InputError(
                f'fresh EANResNet has an EAN tensor {key} the converter does not know '
                f'(known: {sorted(EAN_FRESH_VALUES)})')
        if not bool(torch.all(state_dict[key] == expected)):
            raise InputError(
                f'fresh EANResNet: {key} is not all {expected} after init_weights(); the EAN '
                'initialisation changed, so the converter refuses to guess')
    return state_dict, ean_keys


def _stage_of(key: str) -> str:
    first = key.split('.', 1)[0]
    return first if first.startswith('layer') else 'stem' if first in ('conv1', 'bn1') else first


def _by_stage(keys: Sequence[str]) -> 'OrderedDict[str, List[str]]':
    groups: 'OrderedDict[str, List[str]]' = OrderedDict()
    for key in keys:
        groups.setdefault(_stage_of(key), []).append(key)
    return groups


def _stage_listing(keys: Sequence[str], state_dict: Mapping[str, torch.Tensor]) -> List[str]:
    """One line per stage: blocks, tensors, values."""
    lines = []
    for stage, stage_keys in _by_stage(keys).items():
        values = sum(state_dict[k].numel() for k in stage_keys)
        blocks = {m.group(2) for m in map(_BLOCK_KEY.match, stage_keys) if m}
        what = f'{len(blocks)} blocks, ' if blocks else ''
        lines.append(f'{stage:<7} {what}{len(stage_keys)} tensors, {values:,} values')
    return lines


def _ean_listing(ean_keys: Sequence[str], state_dict: Mapping[str, torch.Tensor]) -> List[str]:
    lines = []
    for stage, stage_keys in _by_stage(ean_keys).items():
        blocks = sorted({int(m.group(2)) for m in map(_BLOCK_KEY.match, stage_keys) if m})
        shape = list(state_dict[stage_keys[0]].shape)
        names = ','.join(s for s in EAN_FRESH_VALUES)
        lines.append(f'{stage}.{{{blocks[0]}..{blocks[-1]}}}.ean.{{{names}}} {shape}: '
                     f'{len(stage_keys)} tensors')
    return lines


def convert_resnet_to_ean(checkpoint: Any,
                          layout: str = 'auto',
                          depth: Optional[int] = None,
                          ean_groups: int = 64,
                          source: str = '<in-memory>',
                          source_path: Optional[str] = None) -> Tuple[dict, ConversionReport]:
    """EAN-ResNet initialisation from a plain ResNet checkpoint.

    Args:
        checkpoint: The loaded checkpoint: mmpretrain layout (``state_dict`` with ``backbone.*``,
            ``head.fc.*``; other non-backbone keys such as ``neck.*`` are carried over unchanged)
            or torchvision layout (flat ``conv1.weight``, ..., ``fc.*``).
        layout: ``'auto'``, ``'mmpretrain'`` or ``'torchvision'``.
        depth: ResNet depth; ``None`` infers it from the blocks in the checkpoint. Given, it
            must match the checkpoint.
        ean_groups: ``G`` of every EAN layer (``EANResNet(ean_groups=...)``).
        source: Name of the source used in messages and ``meta['source']``.
        source_path: File to hash into ``meta['source_sha256']`` (optional).

    Returns:
        ``({'meta': ..., 'state_dict': {'backbone.<key>': ..., 'head.fc.weight': ...,
        'head.fc.bias': ...}}, report)``; the backbone part loads into
        ``EANResNet(depth, ean_groups=ean_groups)`` with ``strict=True``.
    """
    state_dict, dropped_entries, source_meta, notes = split_checkpoint(checkpoint, source)
    layout = detect_layout(state_dict, layout, source)

    # Split the source into ResNet tensors (no prefix) and the rest (output key -> source key).
    if layout == 'mmpretrain':
        resnet = OrderedDict((k[len(BACKBONE_PREFIX):], v) for k, v in state_dict.items()
                             if k.startswith(BACKBONE_PREFIX))
        src_name = {k[len(BACKBONE_PREFIX):]: k for k in state_dict
                    if k.startswith(BACKBONE_PREFIX)}
        rest = OrderedDict((k, k) for k in state_dict if not k.startswith(BACKBONE_PREFIX))
    else:
        fc_keys = [k for k in state_dict if k.startswith('fc.')]
        resnet = OrderedDict((k, v) for k, v in state_dict.items() if k not in fc_keys)
        src_name = {k: k for k in resnet}
        rest = OrderedDict(('head.' + k, k) for k in fc_keys)
        unknown_fc = [k for k in fc_keys if k not in ('fc.weight', 'fc.bias')]
        if unknown_fc:
            raise InputError(f'{source}: unexpected classifier tensors {unknown_fc} '
                                         "(a torchvision ResNet has only 'fc.weight', 'fc.bias')")

    inferred = infer_resnet_depth(resnet)
    if depth is None:
        if inferred is None:
            raise InputError(
                f'{source}: cannot infer the ResNet depth: {_describe_structure(resnet)} matches '
                f'none of ResNet-18/34/50/101/152 (give --depth to see which keys differ); '
                f'keys: {format_keys(src_name.values())}')
        depth = inferred
    elif inferred is not None and inferred != depth:
        raise InputError(
            f'{source}: --depth {depth} does not match the checkpoint: its '
            f'{_describe_structure(resnet)} are ResNet-{inferred}')
    # (no known depth: the key comparison below names the tensors that differ)

    target, ean_keys = fresh_ean_resnet_state_dict(depth, ean_groups)
    ean_set = set(ean_keys)
    resnet_keys = [k for k in target if k not in ean_set]

    missing = [k for k in resnet_keys if k not in resnet]
    filled = [k for k in missing if k.endswith('.num_batches_tracked')]
    missing = [k for k in missing if k not in filled]
    unexpected = [k for k in resnet if k not in target or k in ean_set]
    mismatched = [f'{src_name[k]} {list(resnet[k].shape)} (expected {list(target[k].shape)})'
                  for k in resnet_keys if k in resnet and resnet[k].shape != target[k].shape]
    problems = []
    if missing:
        problems.append(f'missing ResNet tensors: {format_keys(missing)}')
    if unexpected:
        problems.append('tensors a plain ResNet-%d does not have: %s' % (
            depth, format_keys([src_name[k] for k in unexpected])))
        if any(k in ean_set or '.ean.' in k for k in unexpected):
            problems.append('this is already an EAN-ResNet checkpoint (it has EAN tensors); use '
                            'it as it is (or the backbone job to strip a training checkpoint)')
        if any(k.startswith('stem.') for k in unexpected) or any(
                k.startswith('layer') and '.downsample.2.' in k for k in unexpected):
            problems.append('it looks like a ResNetV1c/V1d (deep stem / avg-pool downsample); '
                            'EANResNet is the plain ResNet (V1b, torchvision)')
    if mismatched:
        problems.append(f'shapes differ from EANResNet(depth={depth}): {format_keys(mismatched)}')
    if problems:
        raise InputError(
            f'{source} ({layout} layout) cannot initialise EANResNet(depth={depth}, '
            f'ean_groups={ean_groups}), nothing written:\n  - ' + '\n  - '.join(problems))

    out_sd: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    report = ConversionReport(job='resnet-to-ean', source=source, layout=layout, depth=depth,
                              ean_groups=ean_groups, notes=notes,
                              dropped_entries=dropped_entries)
    for key in target:
        if key in resnet:
            out_sd[BACKBONE_PREFIX + key] = compact_tensor(resnet[key])
            report.kept[BACKBONE_PREFIX + key] = src_name[key]
        else:  # EAN's own tensors, and num_batches_tracked absent from old checkpoints
            out_sd[BACKBONE_PREFIX + key] = target[key].detach().clone()
            report.initialised.append(BACKBONE_PREFIX + key)
    # output channels: the last BN of the last block (EAN tensors come after it)
    feat = next(target[k].shape[0] for k in reversed(resnet_keys) if k.endswith('.running_mean'))
    for out_key, src_key in rest.items():
        value = state_dict[src_key]
        if out_key == 'head.fc.weight' and layout == 'torchvision' and (
                value.dim() != 2 or value.shape[1] != feat):
            raise InputError(
                f'{source}: fc.weight {list(value.shape)} does not take the {feat} channels '
                f'of ResNet-{depth}')
        out_sd[out_key] = compact_tensor(value)
        report.kept[out_key] = src_key

    report.before = TensorCount.of(state_dict)
    report.after = TensorCount.of(out_sd)
    copied = [k for k in resnet_keys if k in resnet]
    report.details.append(f'copied {len(copied)} ResNet tensors '
                          f'(same names, shapes checked), by stage:')
    report.details.extend('  ' + line for line in _stage_listing(copied, resnet))
    if rest:
        report.details.append('copied classifier: ' + ', '.join(
            f'{out} {list(state_dict[src].shape)}' + (f' <- {src}' if out != src else '')
            for out, src in rest.items()))
    else:
        report.notes.append('the source has no classifier (fc / head.fc); none written')
    fresh = ', '.join(f'{name}={value:g}' for name, value in EAN_FRESH_VALUES.items())
    report.details.append(f'initialised {len(ean_keys)} EAN tensors fresh ({fresh}):')
    report.details.extend('  ' + line for line in _ean_listing(ean_keys, target))
    if filled:
        report.details.append(f'initialised {len(filled)} num_batches_tracked buffers absent from '
                              'the source (old checkpoint) with 0')

    meta = _base_meta('resnet-to-ean', source, source_path, source_meta)
    meta.update(source_layout=layout,
                backbone=dict(type='ean_mm.EANResNet', depth=depth, ean_groups=ean_groups),
                copied=len(report.kept), initialised_ean=len(ean_keys),
                initialised_num_batches_tracked=len(filled), ean_init=dict(EAN_FRESH_VALUES),
                head=list(rest), dropped_entries=dropped_entries)
    return {'meta': meta, 'state_dict': out_sd}, report


def resnet_to_ean_file(in_path: str, out_path: str, layout: str = 'auto',
                       depth: Optional[int] = None, ean_groups: int = 64,
                       force: bool = False) -> ConversionReport:
    """:func:`convert_resnet_to_ean` from file ``in_path`` to file ``out_path``."""
    check_output_path(in_path, out_path, force)
    checkpoint = load_checkpoint_file(in_path)
    new, report = convert_resnet_to_ean(checkpoint, layout=layout, depth=depth,
                                        ean_groups=ean_groups, source=osp.abspath(in_path),
                                        source_path=in_path)
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

    to_ean = jobs.add_parser(
        'resnet-to-ean', help='initialise an EAN-ResNet from a plain ResNet checkpoint',
        description='Copy every ResNet tensor of an mmpretrain or torchvision ResNet checkpoint '
        'into an EANResNet initialisation (keys backbone.*, classifier head.fc.*); EAN layers '
        'start fresh.')
    add_common(to_ean)
    to_ean.add_argument('--layout', choices=LAYOUTS, default='auto',
                        help='source layout (default: detected)')
    to_ean.add_argument('--depth', type=int, choices=sorted(set(RESNET_DEPTHS.values())),
                        help='ResNet depth (default: inferred from the checkpoint; given, it '
                        'must match)')
    to_ean.add_argument('--ean-groups', type=int, default=64, help='EAN groups G (default 64)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        if args.job == 'backbone':
            report = backbone_only_file(args.src, args.dst, keep_head=args.keep_head,
                                        force=args.force)
        else:
            report = resnet_to_ean_file(args.src, args.dst, layout=args.layout, depth=args.depth,
                                        ean_groups=args.ean_groups, force=args.force)
    except InputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(report.format(verbose=args.verbose))
    return 0


if __name__ == '__main__':
    sys.exit(main())
