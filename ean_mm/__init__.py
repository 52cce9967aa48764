"""ean_mm: EAN (AAAI 2024) attention for MMDetection and MMPreTrain.

Importing this package registers every component (``EAN``, ``EANResNet``, ``MobileNeXt``,
``EANMobileNeXt``) in MMEngine's root ``MODELS`` registry, which the ``mmdet`` and
``mmpretrain`` registries inherit from, so configs in either scope build them by name.
"""
from .version import __version__
from . import models  # noqa: F401  (registers the components)

__all__ = ['__version__', 'models']
