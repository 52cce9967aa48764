"""The ``ean_mm`` registry scope: children of MMEngine's root ``MODELS`` and
``WEIGHT_INITIALIZERS``.

Configs of any scope name ean_mm's components ``type='ean_mm.<Name>'``, as mmdet configs name
``mmpretrain.<Name>``; MMEngine imports this module, and through ``locations`` the components,
on first use of the scope.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

__all__ = ['MODELS', 'WEIGHT_INITIALIZERS', 'SCOPE']

SCOPE = 'ean_mm'
MODELS = Registry('model', parent=MMENGINE_MODELS, scope=SCOPE, locations=['ean_mm.models'])
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS,
                               scope=SCOPE, locations=['ean_mm.checkpoint'])
