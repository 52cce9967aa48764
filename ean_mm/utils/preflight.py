"""Checks of what a config points at, before a Runner is built (and of the checkpoint it will
load, once it has built the model).

A missing data root, annotation file or checkpoint otherwise surfaces as a stack dump from deep
inside mmengine's lazy dataset or weight initialisation, and a checkpoint of another model as a
key-mismatch warning in the middle of the log; these name the file, the config key that points
at it, and the fix.
"""
import json
import os.path as osp
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator, List, Optional, Tuple

from mmengine.config import Config

from .errors import InputError

if TYPE_CHECKING:
    from mmengine.runner import Runner

__all__ = ['check_config_inputs', 'check_runner_checkpoint', 'explain_invalid_json',
           'PRETRAINED_TYPES']

#: ``init_cfg`` types that load a checkpoint (mmengine's and ean_mm's).
PRETRAINED_TYPES = ('Pretrained', 'ean_mm.Pretrained')

#: Given a missing checkpoint path, a sentence saying how to produce it (or ``None``).
PretrainedHint = Callable[[str], Optional[str]]


def _is_remote(path: str) -> bool:
    return '://' in path


def _leaf_datasets(cfg: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """``(config key, dataset cfg)`` of every leaf dataset, through wrappers."""
    stack = [(key, cfg)]
    while stack:
        name, ds = stack.pop()
        if 'dataset' in ds:
            stack.append((f'{name}.dataset', ds['dataset']))
        elif 'datasets' in ds:
            stack.extend((f'{name}.datasets[{i}]', d) for i, d in enumerate(ds['datasets']))
        else:
            yield name, ds


def _loaders(cfg: Config, mode: str) -> List[str]:
    if mode == 'test':
        return ['test_dataloader']
    if cfg.get('val_cfg') and cfg.get('val_dataloader') and cfg.get('val_evaluator'):
        return ['train_dataloader', 'val_dataloader']
    return ['train_dataloader']


def _datasets(cfg: Config, mode: str) -> Iterator[Tuple[str, dict]]:
    for loader in _loaders(cfg, mode):
        if cfg.get(loader):
            yield from _leaf_datasets(cfg[loader]['dataset'], f'{loader}.dataset')


def _ann_path(ds: dict) -> str:
    ann_file = ds.get('ann_file') or ''
    return ann_file if not ann_file or osp.isabs(ann_file) else osp.join(
        ds.get('data_root') or '', ann_file)


def _check_data(cfg: Config, mode: str) -> None:
    for name, ds in _datasets(cfg, mode):
        data_root = ds.get('data_root') or ''
        if data_root and not _is_remote(data_root) and not osp.isdir(data_root):
            raise InputError(
                f'Data root not found: {data_root!r} ({name}.data_root, {ds.get("type")}). Put '
                f'the data set there (layout: docs/detection.md, "Data") or point the config at '
                f'it: '
                f'--cfg-options {name}.data_root=/path/to/data')
        path = _ann_path(ds)
        if path and not _is_remote(path) and not osp.isfile(path):
            raise InputError(
                f'Annotation file not found: {path!r} ({name}.ann_file = {ds["ann_file"]!r} '
                f'under data_root {data_root!r}). Check the data layout in docs/detection.md or '
                f'override: --cfg-options {name}.ann_file=...')


def _pretrained_inits(node, key: str = 'model') -> Iterator[Tuple[str, dict]]:
    if isinstance(node, dict):
        if node.get('type') in PRETRAINED_TYPES and isinstance(node.get('checkpoint'), str):
            yield key, node
        for k, v in node.items():
            yield from _pretrained_inits(v, f'{key}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _pretrained_inits(v, f'{key}[{i}]')


def _check_pretrained(cfg: Config, hint: Optional[PretrainedHint]) -> None:
    for key, init in _pretrained_inits(cfg.get('model', {})):
        path = init['checkpoint']
        if _is_remote(path) or osp.isfile(path):
            continue
        owner = key.rsplit('.init_cfg', 1)[0]
        how = (hint(path) if hint else None) or 'download or produce that checkpoint first'
        raise InputError(
            f'Pretrained checkpoint not found: {path!r} ({key}.checkpoint). To fix: {how}; '
            f'or point at another file: --cfg-options {key}.checkpoint=/path/to/ckpt.pth; '
            f'or train from scratch: --cfg-options {owner}.init_cfg=None')


def check_config_inputs(cfg: Config, mode: str,
                        pretrained_hint: Optional[PretrainedHint] = None) -> None:
    """Raise :class:`InputError` for a missing data root, annotation file, ``load_from``
    checkpoint or (``mode='train'``) ``Pretrained`` checkpoint; ``mode`` is 'train' or 'test'."""
    _check_data(cfg, mode)
    if mode == 'train':
        _check_pretrained(cfg, pretrained_hint)
    load_from = cfg.get('load_from')
    if load_from and not _is_remote(load_from) and not osp.isfile(load_from):
        raise InputError(f'Checkpoint not found: {load_from!r}')


def check_runner_checkpoint(runner: 'Runner', allow_partial: bool, flag: str) -> None:
    """Before ``runner`` (a built mmengine ``Runner``) loads: refuse (:class:`InputError`) the
    checkpoint it would load or resume from (``load_from``; with ``resume`` and no
    ``load_from``, the work directory's latest) when the file cannot be read or, unless
    ``allow_partial``, leaves any of the model's weights unloaded (mmengine's loader only
    warns). ``flag`` is the tool's option that accepts a partial load."""
    from mmengine.model import is_model_wrapper
    from mmengine.runner import find_latest_checkpoint

    from ..checkpoint import check_checkpoint_fits  # the checkpoint package imports this one
    cfg = runner.cfg
    path = cfg.get('load_from')
    if cfg.get('resume') and not path:
        path = find_latest_checkpoint(runner.work_dir)
    if not path:
        return
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    check_checkpoint_fits(model, path, f'the model of {cfg.filename}',
                          f'; to load it anyway, leaving those at their initial values: {flag}',
                          allow_partial=allow_partial)


@contextmanager
def explain_invalid_json(cfg: Config, mode: str) -> Iterator[None]:
    """Turn a ``json.JSONDecodeError`` from the block into an :class:`InputError` naming the
    annotation file; files are parsed again only after such an error."""
    try:
        yield
    except json.JSONDecodeError as err:
        for name, ds in _datasets(cfg, mode):
            path = _ann_path(ds)
            if not path.endswith('.json'):
                continue
            try:
                with open(path, encoding='utf-8') as f:
                    json.load(f)
            except (json.JSONDecodeError, UnicodeDecodeError) as bad:
                raise InputError(f'Annotation file is not valid JSON: {path!r} '
                                 f'({name}.ann_file): {bad}') from err
        raise InputError(f'Invalid JSON in an annotation file: {err}') from err
