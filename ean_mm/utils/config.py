"""Config loading and runtime set-up with mmdet's tool semantics."""
import os
import os.path as osp
import subprocess
from typing import Dict, Mapping, Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from .errors import InputError

__all__ = ['load_config', 'flush_denormals_on_cpu', 'setup_cpu_distributed', 'slurm_env',
           'finish_distributed']


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


def slurm_env(environ: Mapping[str, str] = os.environ) -> Dict[str, str]:
    """The torch.distributed variables of a Slurm task, derived as mmengine 0.10.7's Slurm
    launcher derives them (``mmengine/dist/utils.py``, ``_init_dist_slurm``): ``RANK`` from
    ``SLURM_PROCID``, ``WORLD_SIZE`` from ``SLURM_NTASKS``, ``LOCAL_RANK`` from ``SLURM_LOCALID``,
    ``MASTER_ADDR`` (unless set) the first host ``scontrol show hostname $SLURM_NODELIST``
    prints, ``MASTER_PORT`` as set or 29500.

    Without ``SLURM_LOCALID`` mmengine takes ``RANK`` modulo the GPU count; without GPUs the local
    rank picks no device, so it is 0 then. Raises ``InputError`` outside a Slurm task."""
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST') if k not in environ]
    if missing:
        raise InputError(f'--launcher slurm: {", ".join(missing)} not set; run the tool as a '
                         'Slurm task (srun, e.g. through tools/slurm_train.sh or '
                         'tools/slurm_test.sh)')
    env = dict(RANK=environ['SLURM_PROCID'], WORLD_SIZE=environ['SLURM_NTASKS'],
               LOCAL_RANK=environ.get('SLURM_LOCALID', '0'),
               MASTER_PORT=environ.get('MASTER_PORT', '29500'))
    if 'MASTER_ADDR' in environ:
        env['MASTER_ADDR'] = environ['MASTER_ADDR']
    else:
        nodes = environ['SLURM_NODELIST']
        try:
            out = subprocess.run(['scontrol', 'show', 'hostname', nodes], capture_output=True,
                                 text=True, check=True).stdout.split()
        except (OSError, subprocess.CalledProcessError) as err:
            raise InputError(f'--launcher slurm: `scontrol show hostname {nodes}` failed '
                             f'({err}); set MASTER_ADDR to the first node\'s address') from err
        if not out:
            raise InputError(f'--launcher slurm: `scontrol show hostname {nodes}` printed no '
                             'host; set MASTER_ADDR to the first node\'s address')
        env['MASTER_ADDR'] = out[0]
    return env


def setup_cpu_distributed(cfg: Config) -> bool:
    """Multi-process runs on CPUs under torchrun or Slurm (``cfg.launcher`` ``'pytorch'`` or
    ``'slurm'``); returns whether it changed ``cfg`` (not with CUDA, nor for other launchers).

    mmengine 0.10.7's pytorch and Slurm launchers call ``torch.cuda.set_device`` and wrap the
    model in DDP with ``device_ids=[LOCAL_RANK]``; both fail without CUDA. This starts the process
    group with gloo first (the Runner then skips its own; for Slurm with the variables
    ``slurm_env`` derives, set in ``os.environ`` as mmengine sets them) and gives DDP
    ``device_ids=None``.
    """
    import torch.distributed as dist
    launcher = cfg.get('launcher', 'none')
    if torch.cuda.is_available() or launcher not in ('pytorch', 'slurm'):
        return False
    if launcher == 'slurm':
        os.environ.update(slurm_env())
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
