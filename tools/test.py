"""Test (and evaluate) a detector or classifier checkpoint; flags as mmdet's tools/test.py.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
                         [--show-dir DIR] [--cfg-options k=v ...] [--launcher ...]

Prints the evaluator's metrics: ``coco/bbox_mAP``, ``coco/bbox_mAP_50``, ``coco/bbox_mAP_75``
(+ s/m/l), ``pascal_voc/mAP``, or ``accuracy/top1`` / ``top5`` for classifiers.
"""
import argparse
import os

from mmengine.config import DictAction
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import ean_mm  # noqa: F401  (registers ean_mm's components and the checkpoint allow-list)
from ean_mm.utils import (InputError, check_config_inputs, check_runner_checkpoint,
                          exit_on_input_error, explain_invalid_json, finish_distributed,
                          flush_denormals_on_cpu, load_config, setup_cpu_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to a pickle file')
    parser.add_argument('--show-dir', help='save images with drawn predictions here '
                        '(relative to the run directory under work_dir, as in mmdet)')
    parser.add_argument('--allow-partial-load', action='store_true',
                        help="test a checkpoint that leaves some of the model's weights "
                        'unloaded (missing or of another shape: they keep their initial '
                        'values); refused otherwise')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def enable_visualization(cfg, show_dir: str) -> None:
    """Turn on the config's visualization hook (mmdet's or mmpretrain's) writing to show_dir."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise InputError('--show-dir needs default_hooks.visualization in the config')
    if cfg.get('default_scope') == 'mmdet':
        hook.update(draw=True, test_out_dir=show_dir)
    else:  # mmpretrain's VisualizationHook
        hook.update(enable=True, out_dir=show_dir)


def main() -> None:
    args = parse_args()
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise InputError(f'--out must be a .pkl file, got {args.out!r}')
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    check_config_inputs(cfg, 'test')

    flush_denormals_on_cpu()
    if args.launcher in ('pytorch', 'slurm'):  # without CUDA: gloo (ean_mm.utils)
        setup_cpu_distributed(cfg)
    with explain_invalid_json(cfg, 'test'):
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        check_runner_checkpoint(runner, args.allow_partial_load, '--allow-partial-load')
        if args.out is not None:
            if cfg.get('default_scope') == 'mmdet':
                from mmdet.evaluation import DumpDetResults
                runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
            else:
                runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
        runner.test()
    finish_distributed()


if __name__ == '__main__':
    exit_on_input_error(main)
