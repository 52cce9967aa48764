"""``--cfg-options`` that turn a detection config into a short run on a generated COCO / VOC
folder (tools/misc/make_synthetic_data.py), leaving the model and the recipe as they are."""
from typing import Dict, Iterator, List, Optional, Tuple

from mmengine.config import Config

__all__ = ['short_run_options', 'leaf_datasets', 'is_epoch_based', 'SIZED_STEPS']

#: Pipeline steps sized for the detector's input -> (argument, side in input sizes). Resize for
#: every config; the rest are RTMDet's (mmdet's configs/rtmdet/rtmdet_l_8xb32-300e_coco.py:
#: mosaic and mix-up canvases, the random resize around twice the crop, the crop, the pad).
SIZED_STEPS: Dict[str, Tuple[str, int]] = {
    'Resize': ('scale', 1), 'CachedMosaic': ('img_scale', 1), 'CachedMixUp': ('img_scale', 1),
    'RandomResize': ('scale', 2), 'RandomCrop': ('crop_size', 1), 'Pad': ('size', 1)}


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


def is_epoch_based(cfg: Config) -> bool:
    """Whether ``cfg`` trains by epochs (mmdet's stock schedules) rather than iterations."""
    return 'max_epochs' in cfg.train_cfg or cfg.train_cfg.get('by_epoch', False)


def short_run_options(cfg: Config, data_root: str, iters: int = 1, batch_size: int = 2,
                      input_size: Optional[int] = None, validate: bool = True,
                      pretrained: bool = False, seed: Optional[int] = None) -> List[str]:
    """``key=value`` strings: ``iters`` iterations (an epoch of ``iters`` batches for an
    epoch-based recipe; a checkpoint at the end, validation then if ``validate``),
    ``batch_size`` images a GPU, every loader on ``data_root`` without workers, every sized
    pipeline step (:data:`SIZED_STEPS`) to ``input_size`` (``None``: the config's), the
    backbone's ImageNet init only if ``pretrained``, a score threshold of 0 (a detector a few
    iterations old still gives boxes to evaluate), mmengine's ``randomness.seed`` if given."""
    if is_epoch_based(cfg):
        opts = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                f'train_dataloader.dataset.indices={batch_size * iters}']
    else:
        opts = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
                f'default_hooks.checkpoint.interval={iters}']
    opts += ['default_hooks.logger.interval=1', f'train_dataloader.batch_size={batch_size}']
    if seed is not None:
        opts.append(f'randomness.seed={seed}')
    if not pretrained:
        opts.append('model.backbone.init_cfg=None')
    opts.append('model.test_cfg.rcnn.score_thr=0.0' if 'rcnn' in cfg.model.test_cfg
                else 'model.test_cfg.score_thr=0.0')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
        for key, ds in leaf_datasets(cfg[loader]['dataset'], f'{loader}.dataset'):
            opts.append(f'{key}.data_root={data_root}/')
            for i, step in enumerate(ds['pipeline']):
                arg, times = SIZED_STEPS.get(step['type'], (None, 0))
                if input_size and arg in step:
                    side = times * input_size
                    opts.append(f'{key}.pipeline.{i}.{arg}=({side},{side})')
    for evaluator in ('val_evaluator', 'test_evaluator'):
        if cfg[evaluator]['type'] == 'CocoMetric':
            opts.append(f'{evaluator}.ann_file={data_root}/annotations/instances_val2017.json')
    if not validate:  # mmengine validates after the last iteration unless there is no val loop
        opts += ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
    return opts
