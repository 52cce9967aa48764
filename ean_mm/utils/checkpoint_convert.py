"""Checkpoint conversion for EAN-ResNet (CLI: ``tools/model_converters/ean_checkpoint.py``).

Two jobs, each a function returning ``(new_checkpoint, ConversionReport)`` on an already loaded
checkpoint, and a ``*_file`` wrapper that loads, converts and saves:

* :func:`extract_backbone` / :func:`backbone_only_file` (``backbone``): a finished classifier
  checkpoint written by an MMEngine/MMPreTrain training run (``meta``, ``state_dict``,
  ``optimizer``, ``message_hub``, ``param_schedulers``) becomes a small backbone-only file
  ``{'meta': {...}, 'state_dict': {'backbone.*': ...}}``, the form detection configs load with
  ``init_cfg=dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')``. ``keep_head=True``
  keeps the classifier too (``neck.*`` and ``head.*``).
* :func:`convert_resnet_to_ean` / :func:`resnet_to_ean_file` (``resnet-to-ean``): a plain ResNet
  ImageNet checkpoint, in the MMPreTrain layout (``state_dict`` with ``backbone.*`` and
  ``head.fc.*``) or the torchvision layout (flat ``conv1.weight``, ``bn1.*``, ``layerX.Y.*``,
  ``fc.*``), becomes an EAN-ResNet initialisation: every ResNet tensor is copied under its own
  name (mmdet's, mmpretrain's and torchvision's ResNet names are the same) after checking names
  and shapes against a freshly built :class:`~ean_mm.models.EANResNet`; only EAN's own tensors
  (``layerX.Y.ean.{gn.weight,gn.bias,alpha,delta}``) come from that fresh model, at
  ``gn.weight=1, gn.bias=0, alpha=0, delta=0`` (checked). The source ``fc`` becomes
  ``head.fc``. A source that lacks ResNet tensors, has tensors an EAN-ResNet of that depth does
  not (an EAN checkpoint, another depth, another ResNet variant) or shapes that differ is
  refused with the keys named: nothing is dropped silently. The one tolerated gap is
  ``num_batches_tracked`` (absent from checkpoints written before torch 0.4.1, e.g. torchvision's
  original ImageNet weights), filled with the fresh model's 0 and reported.

Checkpoints are read with ``torch.load(..., weights_only=True)``; importing :mod:`ean_mm`
allow-lists what MMEngine writes into its checkpoints. A file needing anything else is refused
with a clear error unless the caller opts in with ``trust=True`` (CLI ``--trust-checkpoint``).
Everything written holds only tensors and plain Python values, so it loads with
``weights_only=True``.
"""
import hashlib
import logging
import os
import os.path as osp
import pickle
import re
import tempfile
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch

from ..compat import allow_mmengine_checkpoint_globals
from ..version import __version__

__all__ = [
    'CheckpointConvertError', 'ConversionReport', 'TensorCount', 'EAN_FRESH_VALUES',
    'load_checkpoint_file', 'save_checkpoint', 'extract_backbone', 'backbone_only_file',
    'convert_resnet_to_ean', 'resnet_to_ean_file', 'detect_layout', 'infer_resnet_depth',
    'fresh_ean_resnet_state_dict'
]

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
_SHOW = 8  # keys shown in error messages


class CheckpointConvertError(RuntimeError):
    """A checkpoint cannot be converted as asked; the message says which file/keys and why."""


# --------------------------------------------------------------------------- report


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


def _show(keys: Sequence[str], n: int = _SHOW) -> str:
    keys = list(keys)
    shown = ', '.join(keys[:n])
    return shown + (f', ... ({len(keys)} in all)' if len(keys) > n else '')


# --------------------------------------------------------------------------- file I/O


def load_checkpoint_file(path: str, trust: bool = False) -> Any:
    """``torch.load`` a checkpoint on the CPU with ``weights_only=True``.

    Args:
        path: Checkpoint file.
        trust: Load with ``weights_only=False`` (runs arbitrary pickled code: only for files
            from a trusted source) when the safe load refuses the file.
    """
    if not osp.isfile(path):
        raise CheckpointConvertError(f'{path}: no such file')
    allow_mmengine_checkpoint_globals()  # idempotent; importing ean_mm did it already
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointConvertError(
                f'{path}: refused by the safe loader (torch.load(weights_only=True)): {first}\n'
                'The file holds Python objects beyond tensors and the MMEngine types ean_mm '
                'allow-lists. If you trust its source, rerun with --trust-checkpoint '
                '(trust=True) to load it with weights_only=False.') from err
    except Exception as err:  # noqa: BLE001  (corrupt/truncated/not a torch file)
        raise CheckpointConvertError(
            f'{path}: cannot be read as a torch checkpoint: {type(err).__name__}: {err}') from err
    try:
        return torch.load(path, map_location='cpu', weights_only=False)
    except Exception as err:  # noqa: BLE001
        raise CheckpointConvertError(
            f'{path}: cannot be read as a torch checkpoint even with weights_only=False: '
            f'{type(err).__name__}: {err}') from err


def _check_output(in_path: str, out_path: str, force: bool) -> None:
    if osp.isdir(out_path):
        raise CheckpointConvertError(f'{out_path}: is a directory; give the output file name')
    if osp.exists(out_path):
        if osp.exists(in_path) and osp.samefile(in_path, out_path):
            raise CheckpointConvertError(
                f'{out_path}: is the input file; write the conversion to another file')
        if not force:
            raise CheckpointConvertError(
                f'{out_path}: exists; refusing to overwrite it (use --force / force=True)')


def save_checkpoint(checkpoint: dict, path: str) -> int:
    """Write ``checkpoint`` to ``path`` (parents created, atomic replace); return its size."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(checkpoint, f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return osp.getsize(path)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- helpers


_NOTHING = object()


def _plain(value: Any) -> Any:
    """``value`` reduced to plain Python data (safe for weights_only), or ``_NOTHING``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return [v for v in items if v is not _NOTHING]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            v = _plain(v)
            if isinstance(k, (str, int)) and v is not _NOTHING:
                out[k] = v
        return out
    return _NOTHING


def _unwrap(checkpoint: Any, source: str) -> Tuple['OrderedDict[str, torch.Tensor]', List[str],
                                                   Optional[dict], List[str]]:
    """Split a checkpoint into (state dict, dropped top-level entries, its meta, notes).

    Accepts ``{'state_dict': sd, ...}`` (MMEngine), ``{'model': sd, ...}`` (torchvision's
    reference scripts) or a flat ``{name: tensor}`` dict; a ``module.`` prefix on every key (a
    DDP-wrapped model) is removed.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointConvertError(
            f'{source}: expected a dict checkpoint, got {type(checkpoint).__name__}')
    notes: List[str] = []
    meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), Mapping) else None
    for entry in ('state_dict', 'model'):
        inner = checkpoint.get(entry)
        if isinstance(inner, Mapping) and inner:
            state_dict = inner
            dropped = [k for k in checkpoint if k not in (entry, 'meta')]
            break
    else:
        entry = None
        state_dict = OrderedDict((k, v) for k, v in checkpoint.items() if torch.is_tensor(v))
        dropped = [k for k, v in checkpoint.items() if not torch.is_tensor(v) and k != 'meta']
    not_tensors = [k for k, v in state_dict.items() if not torch.is_tensor(v)]
    if not_tensors:
        raise CheckpointConvertError(
            f"{source}: its {entry or 'top-level'} dict holds entries that are no tensors: "
            f'{_show(not_tensors)}')
    if not state_dict:
        raise CheckpointConvertError(
            f'{source}: holds no tensors (top-level keys: {_show([str(k) for k in checkpoint])})')
    keys = list(state_dict)
    if all(k.startswith('module.') for k in keys):
        state_dict = OrderedDict((k[len('module.'):], v) for k, v in state_dict.items())
        notes.append("removed the 'module.' prefix (DDP wrapper) from every key")
    return OrderedDict(state_dict), [str(k) for k in dropped], meta, notes


def _own(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` detached, cloned when it views a larger storage (so saving stays small)."""
    tensor = tensor.detach()
    if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
        tensor = tensor.clone()
    return tensor


def _base_meta(job: str, source: str, source_path: Optional[str],
               source_meta: Optional[dict]) -> dict:
    meta: Dict[str, Any] = {'converted_by': f'ean_mm {__version__} checkpoint_convert {job}',
                            'source': source}
    if source_path is not None:
        meta['source_sha256'] = _sha256(source_path)
    if source_meta:
        plain = _plain(source_meta)
        if plain:
            meta['source_meta'] = plain
    return meta


# --------------------------------------------------------------------------- backbone


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
    state_dict, dropped_entries, source_meta, notes = _unwrap(checkpoint, source)
    if not any(k.startswith(BACKBONE_PREFIX) for k in state_dict):
        raise CheckpointConvertError(
            f"{source}: has no '{BACKBONE_PREFIX}*' keys, so it is no MMPreTrain/MMDetection "
            f'model checkpoint ({len(state_dict)} tensors; keys: {_show(list(state_dict))}). '
            'For a plain (e.g. torchvision) ResNet use the resnet-to-ean job.')
    prefixes = (BACKBONE_PREFIX, 'neck.', 'head.') if keep_head else (BACKBONE_PREFIX, )
    out_sd: 'OrderedDict[str, torch.Tensor]' = OrderedDict(
        (k, _own(v)) for k, v in state_dict.items() if k.startswith(prefixes))
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
                       force: bool = False, trust: bool = False) -> ConversionReport:
    """:func:`extract_backbone` from file ``in_path`` to file ``out_path``."""
    _check_output(in_path, out_path, force)
    checkpoint = load_checkpoint_file(in_path, trust=trust)
    new, report = extract_backbone(checkpoint, keep_head=keep_head,
                                   source=osp.abspath(in_path), source_path=in_path)
    del checkpoint
    report.output = osp.abspath(out_path)
    report.size_before = osp.getsize(in_path)
    report.size_after = save_checkpoint(new, out_path)
    return report


# --------------------------------------------------------------------------- resnet -> EAN


def detect_layout(state_dict: Mapping[str, torch.Tensor], layout: str = 'auto',
                  source: str = '<in-memory>') -> str:
    """``'mmpretrain'`` (``backbone.*`` keys) or ``'torchvision'`` (flat ``conv1.weight``...)."""
    if layout not in LAYOUTS:
        raise CheckpointConvertError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    has_backbone = any(k.startswith(BACKBONE_PREFIX) for k in state_dict)
    has_flat = any(k == 'conv1.weight' or _BLOCK_KEY.match(k) for k in state_dict)
    if layout == 'auto':
        if has_backbone:
            return 'mmpretrain'
        if has_flat:
            return 'torchvision'
        raise CheckpointConvertError(
            f"{source}: neither the mmpretrain layout ('backbone.*' keys) nor the torchvision "
            f"layout ('conv1.weight', 'layerX.Y.*'); keys: {_show(list(state_dict))}")
    if layout == 'mmpretrain' and not has_backbone:
        raise CheckpointConvertError(
            f"{source}: --layout mmpretrain, but there are no 'backbone.*' keys; keys: "
            f'{_show(list(state_dict))}')
    if layout == 'torchvision' and has_backbone:
        raise CheckpointConvertError(
            f"{source}: --layout torchvision, but there are 'backbone.*' keys (mmpretrain "
            f'layout); keys: {_show(list(state_dict))}')
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


@contextmanager
def _quiet_mmengine() -> Iterator[None]:
    """Silence MMEngine's per-parameter ``init_weights`` log (INFO) for a moment."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def fresh_ean_resnet_state_dict(depth: int, ean_groups: int = 64
                                ) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """State dict of a fresh ``EANResNet(depth, ean_groups)`` after ``init_weights()``.

    Returns:
        ``(state_dict, ean_keys)``: ``ean_keys`` are the keys of EAN's own tensors, each checked
        to hold :data:`EAN_FRESH_VALUES` (``gn.weight=1, gn.bias=0, alpha=0, delta=0``).
    """
    from ..models import EAN, EANResNet
    try:
        model = EANResNet(depth=depth, ean_groups=ean_groups)
    except (KeyError, ValueError) as err:
        raise CheckpointConvertError(f'cannot build EANResNet(depth={depth}, '
                                     f'ean_groups={ean_groups}): {err}') from err
    with _quiet_mmengine():
        model.init_weights()
    state_dict = model.state_dict()
    ean_prefixes = tuple(name + '.' for name, module in model.named_modules()
                         if isinstance(module, EAN))
    ean_keys = [k for k in state_dict if k.startswith(ean_prefixes)]
    if len(ean_prefixes) != sum(_block_structure(state_dict)[1]) or not ean_keys:
        raise CheckpointConvertError(
            f'EANResNet(depth={depth}) has {len(ean_prefixes)} EAN layers, expected one per '
            'residual block; the converter does not know this model')
    for key in ean_keys:
        suffix = key[len(next(p for p in ean_prefixes if key.startswith(p))):]
        expected = EAN_FRESH_VALUES.get(suffix)
        if expected is None:
            raise CheckpointConvertError(
                f'fresh EANResNet has an EAN tensor {key} the converter does not know '
                f'(known: {sorted(EAN_FRESH_VALUES)})')
        if not bool(torch.all(state_dict[key] == expected)):
            raise CheckpointConvertError(
                f'fresh EANResNet: {key} is not all {expected} after init_weights(); the EAN '
                'initialisation changed, so the converter refuses to guess')
    return state_dict, ean_keys


def _stage_of(key: str) -> str:
    first = key.split('.', 1)[0]
    return first if first.startswith('layer') else 'stem' if first in ('conv1', 'bn1') else first


def _stage_listing(keys: Sequence[str], state_dict: Mapping[str, torch.Tensor]) -> List[str]:
    """One line per stage: blocks, tensors, values."""
    groups: 'OrderedDict[str, List[str]]' = OrderedDict()
    for key in keys:
        groups.setdefault(_stage_of(key), []).append(key)
    lines = []
    for stage, stage_keys in groups.items():
        values = sum(state_dict[k].numel() for k in stage_keys)
        blocks = {m.group(2) for m in map(_BLOCK_KEY.match, stage_keys) if m}
        what = f'{len(blocks)} blocks, ' if blocks else ''
        lines.append(f'{stage:<7} {what}{len(stage_keys)} tensors, {values:,} values')
    return lines


def _ean_listing(ean_keys: Sequence[str], state_dict: Mapping[str, torch.Tensor]) -> List[str]:
    groups: 'OrderedDict[str, List[str]]' = OrderedDict()
    for key in ean_keys:
        groups.setdefault(_stage_of(key), []).append(key)
    lines = []
    for stage, stage_keys in groups.items():
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
    state_dict, dropped_entries, source_meta, notes = _unwrap(checkpoint, source)
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
            raise CheckpointConvertError(f'{source}: unexpected classifier tensors {unknown_fc} '
                                         "(a torchvision ResNet has only 'fc.weight', 'fc.bias')")

    inferred = infer_resnet_depth(resnet)
    if depth is None:
        if inferred is None:
            raise CheckpointConvertError(
                f'{source}: cannot infer the ResNet depth: {_describe_structure(resnet)} matches '
                f'none of ResNet-18/34/50/101/152 (give --depth to see which keys differ); '
                f'keys: {_show(list(src_name.values()))}')
        depth = inferred
    elif inferred is not None and inferred != depth:
        raise CheckpointConvertError(
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
        problems.append(f'missing ResNet tensors: {_show(missing)}')
    if unexpected:
        problems.append('tensors a plain ResNet-%d does not have: %s' % (
            depth, _show([src_name[k] for k in unexpected])))
        if any(k in ean_set or '.ean.' in k for k in unexpected):
            problems.append('this is already an EAN-ResNet checkpoint (it has EAN tensors); use '
                            'it as it is (or the backbone job to strip a training checkpoint)')
        if any(k.startswith('stem.') for k in unexpected) or any(
                k.startswith('layer') and '.downsample.2.' in k for k in unexpected):
            problems.append('it looks like a ResNetV1c/V1d (deep stem / avg-pool downsample); '
                            'EANResNet is the plain ResNet (V1b, torchvision)')
    if mismatched:
        problems.append(f'shapes differ from EANResNet(depth={depth}): {_show(mismatched)}')
    if problems:
        raise CheckpointConvertError(
            f'{source} ({layout} layout) cannot initialise EANResNet(depth={depth}, '
            f'ean_groups={ean_groups}), nothing written:\n  - ' + '\n  - '.join(problems))

    out_sd: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    report = ConversionReport(job='resnet-to-ean', source=source, layout=layout, depth=depth,
                              ean_groups=ean_groups, notes=notes,
                              dropped_entries=dropped_entries)
    for key in target:
        if key in resnet:
            out_sd[BACKBONE_PREFIX + key] = _own(resnet[key])
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
            raise CheckpointConvertError(
                f'{source}: fc.weight {list(value.shape)} does not take the {feat} channels '
                f'of ResNet-{depth}')
        out_sd[out_key] = _own(value)
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
                backbone=dict(type='EANResNet', depth=depth, ean_groups=ean_groups),
                copied=len(report.kept), initialised_ean=len(ean_keys),
                initialised_num_batches_tracked=len(filled), ean_init=dict(EAN_FRESH_VALUES),
                head=list(rest), dropped_entries=dropped_entries)
    return {'meta': meta, 'state_dict': out_sd}, report


def resnet_to_ean_file(in_path: str, out_path: str, layout: str = 'auto',
                       depth: Optional[int] = None, ean_groups: int = 64, force: bool = False,
                       trust: bool = False) -> ConversionReport:
    """:func:`convert_resnet_to_ean` from file ``in_path`` to file ``out_path``."""
    _check_output(in_path, out_path, force)
    checkpoint = load_checkpoint_file(in_path, trust=trust)
    new, report = convert_resnet_to_ean(checkpoint, layout=layout, depth=depth,
                                        ean_groups=ean_groups, source=osp.abspath(in_path),
                                        source_path=in_path)
    del checkpoint
    report.output = osp.abspath(out_path)
    report.size_before = osp.getsize(in_path)
    report.size_after = save_checkpoint(new, out_path)
    return report
