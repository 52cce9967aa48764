"""Config loading and runtime set-up with mmdet's tool semantics."""
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from .errors import InputError

__all__ = ['load_config', 'flush_denormals_on_cpu', 'setup_cpu_distributed', 'finish_distributed']


def load_config(path: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """``path`` with ``--cfg-options`` merged, ``launcher`` set and ``work_dir`` defaulting to
    ``./work_dirs/<config name>``, as mmdet's tools do. No side effects."""
    if not osp.isfile(path):
        raise InputError(f'Config file not found: {path!r}')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def flush_denormals_on_cpu() -> bool:
    """Without CUDA, flush subnormal floats to zero; returns whether it did.

    Subnormal activations and gradients (freshly initialised SSD heads) run 10-20x slower on
    x86 CPUs; GPUs' fast paths flush them anyway.
    """
    if torch.cuda.is_available():
        return False
    return torch.set_flush_denormal(True)


def setup_cpu_distributed(cfg: Config) -> bool:
    """Multi-process runs on CPUs under torchrun (``launcher='pytorch'``); returns whether it
    changed ``cfg`` (not with CUDA).

    mmengine 0.10.7's pytorch launcher calls ``torch.cuda.set_device`` and wraps the model in DDP
    with ``device_ids=[LOCAL_RANK]``; both fail without CUDA. This starts the process group with
    gloo first (the Runner then skips its own) and gives DDP ``device_ids=None``.
    """
    import torch.distributed as dist
    if torch.cuda.is_available():
        return False
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        print_log('no CUDA device: distributed backend nccl -> gloo', logger='current')
        dist_cfg['backend'] = 'gloo'
    if not dist.is_initialized():
        dist.init_process_group(backend=dist_cfg['backend'])
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
    return True


def finish_distributed() -> None:
    """Destroy the process group, if one was started, before the interpreter exits (its
    background threads otherwise die at exit: ``terminate called without an active
    exception``)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
