"""Checks run by ``tools/train.py`` / ``tools/test.py`` before a Runner is built.

A missing data root, annotation file or pretrained checkpoint otherwise surfaces as a stack dump
from deep inside mmengine's lazy dataset / weight initialisation; these checks name the file,
the config key that points at it, and how to fix it.
"""
import json
import os.path as osp
from typing import Iterator, List, Optional, Tuple

from mmengine.config import Config

# A missing ``checkpoints/<name>.pth`` is produced by ``configs/pretrain/<name>.py`` (README).
PRETRAIN_CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                               'configs', 'pretrain')


class PreflightError(RuntimeError):
    """A config points at something that is not there; the message says how to fix it."""


def _is_remote(path: str) -> bool:
    return '://' in path


def _datasets(cfg: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """Yield ``(config key, dataset cfg)`` for every leaf dataset, through wrappers."""
    stack = [(key, cfg)]
    while stack:
        name, ds = stack.pop()
        if 'dataset' in ds:
            stack.append((f'{name}.dataset', ds['dataset']))
        elif 'datasets' in ds:
            stack.extend((f'{name}.datasets[{i}]', d) for i, d in enumerate(ds['datasets']))
        else:
            yield name, ds


def _annotation_files(cfg: Config, loaders: List[str]) -> Iterator[Tuple[str, str, dict]]:
    for loader in loaders:
        if not cfg.get(loader):
            continue
        for name, ds in _datasets(cfg[loader]['dataset'], f'{loader}.dataset'):
            yield loader, name, ds


def loaders_for(mode: str, cfg: Config) -> List[str]:
    if mode == 'train':
        loaders = ['train_dataloader']
        if cfg.get('val_cfg') and cfg.get('val_dataloader') and cfg.get('val_evaluator'):
            loaders.append('val_dataloader')
        return loaders
    return ['test_dataloader']


def check_data_files(cfg: Config, mode: str) -> None:
    """Raise :class:`PreflightError` for a missing data root, annotation file or image folder."""
    for _, name, ds in _annotation_files(cfg, loaders_for(mode, cfg)):
        data_root = ds.get('data_root') or ''
        if data_root and not _is_remote(data_root) and not osp.isdir(data_root):
            raise PreflightError(
                f'Data root not found: {data_root!r} ({name}.data_root, '
                f'{ds.get("type")}). Put the data set there (layout in README.md, "Data") or '
                f'point the config at it: --cfg-options {name}.data_root=/path/to/data')
        ann_file = ds.get('ann_file') or ''
        if ann_file:
            path = ann_file if osp.isabs(ann_file) else osp.join(data_root, ann_file)
            if not _is_remote(path) and not osp.isfile(path):
                raise PreflightError(
                    f'Annotation file not found: {path!r} ({name}.ann_file = {ann_file!r} '
                    f'under data_root {data_root!r}). Check the data layout in README.md or '
                    f'override: --cfg-options {name}.ann_file=...')


def find_invalid_json(cfg: Config, mode: str) -> Optional[str]:
    """The first ``.json`` annotation file of the config that does not parse, with the reason.

    Called only after a ``json.JSONDecodeError``, so a healthy run never parses twice.
    """
    for _, name, ds in _annotation_files(cfg, loaders_for(mode, cfg)):
        ann_file = ds.get('ann_file') or ''
        if not ann_file.endswith('.json'):
            continue
        path = ann_file if osp.isabs(ann_file) else osp.join(ds.get('data_root') or '', ann_file)
        try:
            with open(path, encoding='utf-8') as f:
                json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return f'Annotation file is not valid JSON: {path!r} ({name}.ann_file): {e}'
    return None


def _pretrained_inits(node, key: str = 'model') -> Iterator[Tuple[str, dict]]:
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained' and isinstance(node.get('checkpoint'), str):
            yield key, node
        for k, v in node.items():
            yield from _pretrained_inits(v, f'{key}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _pretrained_inits(v, f'{key}[{i}]')


def check_pretrained(cfg: Config) -> None:
    """Raise :class:`PreflightError` when a ``Pretrained`` init_cfg names a missing local file."""
    for key, init in _pretrained_inits(cfg.get('model', {})):
        path = init['checkpoint']
        if _is_remote(path) or osp.isfile(path):
            continue
        owner = key.rsplit('.init_cfg', 1)[0]
        name = osp.splitext(osp.basename(path))[0]
        produce = f'configs/pretrain/{name}.py'
        if not osp.isfile(osp.join(PRETRAIN_CONFIG_DIR, f'{name}.py')):
            produce = None
        how = (f'produce it with ImageNet pretraining: python tools/train.py {produce}, then '
               f'python tools/model_converters/ean_checkpoint.py backbone '
               f'work_dirs/{name}/epoch_<N>.pth {path} (README.md, "ImageNet pretraining")'
               if produce else
               'download or produce that checkpoint first')
        raise PreflightError(
            f'Pretrained checkpoint not found: {path!r} ({key}.checkpoint). To fix: {how}; '
            f'or point at another file: --cfg-options {key}.checkpoint=/path/to/ckpt.pth; '
            f'or train from scratch: --cfg-options {owner}.init_cfg=None')
