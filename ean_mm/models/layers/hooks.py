"""Whether hooks watch a module: the fused and in-place shortcuts of the layers step aside
for them, so that a hook sees each module run and keeps the tensors it was given."""
import torch.nn as nn
from torch.nn.modules import module as nn_module

__all__ = ['hooked']

_KINDS = ('forward_hooks', 'forward_pre_hooks', 'backward_hooks', 'backward_pre_hooks')


def hooked(*modules: nn.Module) -> bool:
    """Whether forward or backward hooks watch any of ``modules`` (their own or global ones)."""
    return any(getattr(nn_module, f'_global_{k}', None) for k in _KINDS) or any(
        getattr(m, f'_{k}', None) for m in modules for k in _KINDS)
