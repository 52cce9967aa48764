"""``--cfg-options`` that turn a detection config into a short run on a generated COCO / VOC
folder (tools/misc/make_synthetic_data.py), leaving the model and the recipe as they are."""
from typing import Iterator, List, Optional, Tuple

from mmengine.config import Config

__all__ = ['short_run_options', 'leaf_datasets']


def leaf_datasets(node: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """``(option key, dataset cfg)`` of every dataset under wrappers (``RepeatDataset``'s
    ``dataset``, ``ConcatDataset``'s ``datasets``)."""
    if 'dataset' in node:
        yield from leaf_datasets(node['dataset'], f'{key}.dataset')
    elif 'datasets' in node:
        for i, ds in enumerate(node['datasets']):
            yield from leaf_datasets(ds, f'{key}.datasets.{i}')
    else:
        yield key, node


def short_run_options(cfg: Config, data_root: str, iters: int = 1, batch_size: int = 2,
                      input_size: Optional[int] = None, validate: bool = True,
                      pretrained: bool = False) -> List[str]:
    """``key=value`` strings: ``iters`` iterations (a checkpoint at the end, validation then if
    ``validate``), ``batch_size`` images a GPU, every loader on ``data_root`` without workers,
    every ``Resize`` to ``input_size`` squared (``None``: the config's), the backbone's ImageNet
    init only if ``pretrained``, a score threshold of 0 (a detector a few iterations old still
    gives boxes to evaluate)."""
    opts = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}', 'default_hooks.logger.interval=1',
            f'train_dataloader.batch_size={batch_size}']
    if not pretrained:
        opts.append('model.backbone.init_cfg=None')
    opts.append('model.test_cfg.rcnn.score_thr=0.0' if 'rcnn' in cfg.model.test_cfg
                else 'model.test_cfg.score_thr=0.0')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
        for key, ds in leaf_datasets(cfg[loader]['dataset'], f'{loader}.dataset'):
            opts.append(f'{key}.data_root={data_root}/')
            for i, step in enumerate(ds['pipeline']):
                if step['type'] == 'Resize' and input_size:
                    opts.append(f'{key}.pipeline.{i}.scale=({input_size},{input_size})')
    for evaluator in ('val_evaluator', 'test_evaluator'):
        if cfg[evaluator]['type'] == 'CocoMetric':
            opts.append(f'{evaluator}.ann_file={data_root}/annotations/instances_val2017.json')
    if not validate:  # mmengine validates after the last iteration unless there is no val loop
        opts += ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
    return opts
