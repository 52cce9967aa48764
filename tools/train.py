"""Train a detector (mmdet config) or a classifier (mmpretrain config); flags as mmdet's.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--auto-scale-lr]
                                 [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import argparse
import os
from pathlib import Path
from typing import Optional

from mmengine.config import DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import ean_mm  # noqa: F401  (registers ean_mm's components and the checkpoint allow-list)
from ean_mm.utils import (InputError, check_config_inputs, check_runner_checkpoint,
                          exit_on_input_error, explain_invalid_json, finish_distributed,
                          flush_denormals_on_cpu, load_config, setup_cpu_distributed)

PRETRAIN_CONFIGS = Path(__file__).resolve().parents[1] / 'configs' / 'pretrain'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector or classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the LR by total batch size / auto_scale_lr.base_batch_size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or without a path from the latest checkpoint '
                        'in the work directory')
    parser.add_argument('--allow-partial-load', action='store_true',
                        help="load or resume from a checkpoint that leaves some of the model's "
                        'weights unloaded (missing or of another shape: they keep their '
                        'initial values, e.g. load_from a detector with another number of '
                        'classes); refused otherwise')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (e.g. '
                        'train_cfg.max_iters=100 model.backbone.init_cfg=None)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


#: Checkpoints made from public weights rather than by pretraining.
CONVERTED = {
    'mobilenext_in1k': "convert the MobileNeXt authors' ImageNet weights: python "
                       'tools/model_converters/mobilenext_official.py THEIR_FILE.pth {checkpoint} '
                       '(docs/weights.md)',
}


def pretrain_hint(checkpoint: str) -> Optional[str]:
    """How to produce ``checkpoints/<name>.pth``: convert public weights, or pretrain with
    ``configs/pretrain/<name>.py`` where it exists."""
    name = Path(checkpoint).stem
    if name in CONVERTED:
        return CONVERTED[name].format(checkpoint=checkpoint)
    if not (PRETRAIN_CONFIGS / f'{name}.py').is_file():
        return None
    return (f'produce it with ImageNet pretraining: python tools/train.py '
            f'configs/pretrain/{name}.py, then python tools/model_converters/ean_checkpoint.py '
            f'backbone work_dirs/{name}/epoch_<N>.pth {checkpoint} (docs/weights.md)')


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise InputError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    check_config_inputs(cfg, 'train', pretrain_hint)

    flush_denormals_on_cpu()
    if args.launcher in ('pytorch', 'slurm'):  # without CUDA: gloo (ean_mm.utils)
        setup_cpu_distributed(cfg)
    with explain_invalid_json(cfg, 'train'):
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        check_runner_checkpoint(runner, args.allow_partial_load, '--allow-partial-load')
        runner.train()
    finish_distributed()


if __name__ == '__main__':
    exit_on_input_error(main)
