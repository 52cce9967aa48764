"""Compatibility fixes for the pinned OpenMMLab stack (see each module's docstring)."""
from .checkpoint import allow_mmengine_checkpoint_globals, mmengine_checkpoint_safe_globals

__all__ = ['allow_mmengine_checkpoint_globals', 'mmengine_checkpoint_safe_globals']
