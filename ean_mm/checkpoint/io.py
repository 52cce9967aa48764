"""Reading and writing checkpoint files safely: ``weights_only`` loads, atomic saves."""
import hashlib
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Any, Iterable, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn

from ..utils.errors import InputError
from ..utils.files import atomic_write
from .safe_globals import allow_mmengine_checkpoint_globals

__all__ = ['load_checkpoint_file', 'split_checkpoint', 'check_output_path', 'save_checkpoint',
           'file_sha256', 'compact_tensor', 'plain_data', 'format_keys', 'unloaded_tensors',
           'check_checkpoint_fits']


def format_keys(keys: Iterable[str], limit: int = 8) -> str:
    """The first ``limit`` keys, comma-separated, and how many there are in all."""
    keys = list(keys)
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys)} in all)' if len(keys) > limit else '')


def load_checkpoint_file(path: str) -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with MMEngine's types
    allow-listed; a missing, unreadable or unsafe file raises :class:`InputError`."""
    if not osp.isfile(path):
        raise InputError(f'{path}: no such file')
    allow_mmengine_checkpoint_globals()  # idempotent; importing ean_mm did it already
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(
            f'{path}: refused by the safe loader (torch.load(weights_only=True)): {first}. The '
            'file holds Python objects beyond tensors and the types MMEngine writes; re-save its '
            'state dict (torch.save(model.state_dict(), ...)) where it was made.') from err
    except Exception as err:  # noqa: BLE001  (truncated, corrupt, not a torch file)
        first = str(err).strip().split('. ')[0].splitlines()[0] if str(err).strip() else ''
        raise InputError(
            f'{path}: cannot be read as a torch checkpoint ({osp.getsize(path)} bytes; '
            f'{type(err).__name__}{": " + first if first else ""}): the file is truncated or '
            'corrupt, or not a checkpoint. Copy or save it again, or give another file.'
        ) from None


def split_checkpoint(checkpoint: Any, source: str
                     ) -> Tuple['OrderedDict[str, torch.Tensor]', List[str], Optional[dict],
                                List[str]]:
    """``(state dict, other top-level entries, meta, notes)`` of a loaded checkpoint.

    Accepts ``{'state_dict': sd, ...}`` (MMEngine), ``{'model': sd, ...}`` (torchvision's
    reference scripts) and a bare ``{name: tensor}`` dict; a ``module.`` prefix on every key
    (DDP) is removed and noted. Sources: open-mmlab/mmengine ``mmengine/runner/runner.py`` @
    0050ff70b73e047defe9db0c3bb01555038596b7 ``Runner.save_checkpoint`` (``meta``, ``state_dict``,
    ...); pytorch/vision ``references/classification/train.py`` @
    bde124ee2f3419fe31ad79c858af40206e8bf792 (``model``, ``optimizer``, ``lr_scheduler``,
    ``epoch``, ``args``; its ``args`` Namespace makes :func:`load_checkpoint_file` refuse the
    file until it is saved again).
    """
    if not isinstance(checkpoint, Mapping):
        raise InputError(f'{source}: expected a dict checkpoint, got {type(checkpoint).__name__}')
    notes: List[str] = []
    meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), Mapping) else None
    for entry in ('state_dict', 'model'):
        inner = checkpoint.get(entry)
        if isinstance(inner, Mapping) and inner:
            state_dict = inner
            others = [k for k in checkpoint if k not in (entry, 'meta')]
            break
    else:
        entry = None
        state_dict = OrderedDict((k, v) for k, v in checkpoint.items() if torch.is_tensor(v))
        others = [k for k, v in checkpoint.items() if not torch.is_tensor(v) and k != 'meta']
    not_tensors = [k for k, v in state_dict.items() if not torch.is_tensor(v)]
    if not_tensors:
        raise InputError(f"{source}: its {entry or 'top-level'} dict holds entries that are no "
                         f'tensors: {format_keys(not_tensors)}')
    if not state_dict:
        raise InputError(f'{source}: holds no tensors (top-level keys: '
                         f'{format_keys([str(k) for k in checkpoint])})')
    if all(k.startswith('module.') for k in state_dict):
        state_dict = OrderedDict((k[len('module.'):], v) for k, v in state_dict.items())
        notes.append("removed the 'module.' prefix (DDP wrapper) from every key")
    return OrderedDict(state_dict), [str(k) for k in others], meta, notes


def unloaded_tensors(model: nn.Module, state: Mapping[str, torch.Tensor]
                     ) -> Tuple[List[str], List[str], List[str]]:
    """``(missing, other shape, unexpected)`` for loading ``state`` into ``model``: its tensors
    that ``state`` lacks (BatchNorm's ``num_batches_tracked`` counters aside: ``load_state_dict``
    fills them in), those ``state`` holds with another shape (as ``key (shape vs shape)``), and
    the keys of ``state`` that the model lacks."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith('num_batches_tracked')]
    other_shape = [f'{k} ({tuple(state[k].shape)} vs {tuple(own[k].shape)})' for k in own
                   if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    unexpected = [k for k in state if k not in own]
    return missing, other_shape, unexpected


def _read_any(path: str) -> Any:
    """A local file by :func:`load_checkpoint_file`; a URL (``https://``, ``torchvision://``
    ...) by mmengine's loaders, which keep it in torch's cache for the load that follows."""
    if '://' not in path:
        return load_checkpoint_file(path)
    from mmengine.runner.checkpoint import _load_checkpoint
    try:
        return _load_checkpoint(path, map_location='cpu', logger='silent')
    except OSError as err:  # URLError, HTTPError: no network or no such file there
        raise InputError(f'{path}: could not be downloaded ({type(err).__name__}: {err}); '
                         'without network, give a local copy of the file') from None


def check_checkpoint_fits(model: nn.Module, path: str, target: str, override: str = '',
                          allow_partial: bool = False, allow_unexpected: bool = True) -> None:
    """Refuse the checkpoint file ``path`` for ``model`` (``target`` names the model in the
    message) with one :class:`InputError` line when it cannot be read, or (unless
    ``allow_partial``) leaves any of the model's tensors unloaded: missing or of another shape;
    also for tensors the model lacks unless ``allow_unexpected``. ``override`` ends the message:
    how to load it anyway (e.g. ``'; to load it anyway, add --allow-partial-load'``)."""
    state, _, _, _ = split_checkpoint(_read_any(path), path)
    if allow_partial:
        return
    missing, other_shape, unexpected = unloaded_tensors(model, state)
    extra = (f'; it holds {len(unexpected)} tensors the model lacks '
             f'({format_keys(unexpected, 4)})' if unexpected and not allow_unexpected else '')
    if not missing and not other_shape and not extra:
        return
    total = len([k for k in model.state_dict() if not k.endswith('num_batches_tracked')])
    found = [f'missing {format_keys(missing, 4)}' if missing else '',
             f'of another shape {format_keys(other_shape, 3)}' if other_shape else '']
    raise InputError(
        f'{path} does not fit {target}: it leaves {len(missing) + len(other_shape)} of the '
        f"model's {total} tensors unloaded ({'; '.join(f for f in found if f) or 'none'})"
        f'{extra}. Use the checkpoint trained with this config (or the config it was trained '
        f'with){override}.')


def check_output_path(in_path: str, out_path: str, force: bool) -> None:
    """Refuse an output that is a folder, the input itself, or an existing file without
    ``force``."""
    if osp.isdir(out_path):
        raise InputError(f'{out_path}: is a directory; give the output file name')
    if osp.exists(out_path):
        if osp.exists(in_path) and osp.samefile(in_path, out_path):
            raise InputError(f'{out_path}: is the input file; write to another file')
        if not force:
            raise InputError(f'{out_path}: exists; refusing to overwrite it (use --force)')


def save_checkpoint(checkpoint: dict, path: str) -> int:
    """Write ``checkpoint`` to ``path`` (parents created, atomic replace, the umask's
    permissions); return its size."""
    with atomic_write(path) as f:
        torch.save(checkpoint, f)
    return osp.getsize(path)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def compact_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` detached, cloned when it views a larger storage (so a saved file stays small)."""
    tensor = tensor.detach()
    if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
        tensor = tensor.clone()
    return tensor


_NOTHING = object()


def plain_data(value: Any) -> Any:
    """``value`` reduced to plain Python data (loadable with ``weights_only``); entries that are
    not plain are left out (``None`` at the top level becomes ``None``)."""
    result = _plain(value)
    return None if result is _NOTHING else result


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [v for v in map(_plain, value) if v is not _NOTHING]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            v = _plain(v)
            if isinstance(k, (str, int)) and v is not _NOTHING:
                out[k] = v
        return out
    return _NOTHING
