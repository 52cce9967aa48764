"""Config handling shared by ``tools/train.py`` and ``tools/test.py`` (mmdet's tool semantics)."""
import json
import os
import os.path as osp
import sys
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from ..models.backbones.pretrained import PretrainedMismatchError
from .preflight import PreflightError, check_data_files, check_pretrained, find_invalid_json


def load_config(path: str, cfg_options: Optional[dict], work_dir: Optional[str],
                launcher: str) -> Config:
    """Load ``path``, merge ``--cfg-options``, set ``work_dir`` and the launcher.

    ``work_dir`` defaults to ``./work_dirs/<config name>`` as in mmdet. Distributed runs on a
    machine without CUDA switch the process group backend from NCCL to gloo.
    """
    if not osp.isfile(path):
        raise PreflightError(f'Config file not found: {path!r}')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    if not torch.cuda.is_available():
        # Subnormal floats (small activations/gradients of freshly initialised SSD heads) run
        # ~10-20x slower on x86 CPUs; flushing them to zero is what GPUs' fast paths do anyway.
        torch.set_flush_denormal(True)
    if launcher == 'pytorch' and not torch.cuda.is_available():
        _setup_cpu_distributed(cfg)
    return cfg


def _setup_cpu_distributed(cfg: Config) -> None:
    """Multi-process training on CPUs under torchrun.

    mmengine 0.10.7's pytorch launcher calls ``torch.cuda.set_device`` and wraps the model in DDP
    with ``device_ids=[LOCAL_RANK]``; both fail without CUDA. Here the process group is started
    with gloo first (the Runner then skips its own init), and DDP gets ``device_ids=None``.
    """
    import torch.distributed as dist
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        print_log('no CUDA device: distributed backend nccl -> gloo', logger='current')
        dist_cfg['backend'] = 'gloo'
    if not dist.is_initialized():
        dist.init_process_group(backend=dist_cfg['backend'])
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper


@contextmanager
def clear_errors(cfg: Optional[Config] = None, mode: str = 'train') -> Iterator[None]:
    """Run the pre-flight checks on ``cfg`` (if given) for ``mode`` ('train' or 'test'), then
    the body; known failures become one-line errors (exit 1) instead of stack dumps."""
    try:
        if cfg is not None:
            check_data_files(cfg, mode)
            if mode == 'train':
                check_pretrained(cfg)
            if cfg.get('load_from') and not osp.isfile(cfg.load_from) \
                    and '://' not in cfg.load_from:
                raise PreflightError(f'Checkpoint not found: {cfg.load_from!r}')
        yield
    except (PreflightError, PretrainedMismatchError) as e:
        _fail(str(e))
    except json.JSONDecodeError as e:
        _fail(find_invalid_json(cfg, mode) or f'Invalid JSON in an annotation file: {e}')


def _fail(message: str) -> None:
    # Only rank 0 needs to say it; every rank exits.
    if int(os.environ.get('RANK', '0')) == 0:
        print(f'error: {message}', file=sys.stderr)
    raise SystemExit(1)
