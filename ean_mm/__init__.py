"""ean_mm: EAN (AAAI 2024) attention for MMDetection and MMPreTrain.

Importing it registers the components in the ``ean_mm`` registry scope (configs name them
``type='ean_mm.EANResNet'``) and allow-lists the types MMEngine writes into its checkpoints for
torch's ``weights_only`` loading.
"""
from .checkpoint import allow_mmengine_checkpoint_globals
from .version import __version__
from . import models  # noqa: F401,E402  (registers the components)

allow_mmengine_checkpoint_globals()

__all__ = ['__version__', 'models']
