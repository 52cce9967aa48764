"""ean_mm: EAN (AAAI 2024) attention for MMDetection and MMPreTrain.

Importing this package

* registers every component (``EAN``, ``SE``, ``CoordAttention``, ``EANResNet``,
  ``MobileNeXt``, ``EANMobileNeXt``) in MMEngine's root ``MODELS`` registry, which the
  ``mmdet`` and ``mmpretrain`` registries inherit from, so configs in either scope build them
  by name, and ``CompatSSDHead`` in mmdet's;
* allow-lists the few types MMEngine writes into its checkpoints for torch's safe
  (``weights_only``) loading, so resume and test work under torch >= 2.6 (``ean_mm.compat``).
"""
from .compat import allow_mmengine_checkpoint_globals
from .version import __version__
from . import models  # noqa: F401  (registers the components)

allow_mmengine_checkpoint_globals()

__all__ = ['__version__', 'models']
