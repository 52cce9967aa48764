"""The ``ean_mm`` registry scope: a child of MMEngine's root ``MODELS``.

Configs of any scope name ean_mm's components ``type='ean_mm.<Name>'``, as mmdet configs name
``mmpretrain.<Name>``; MMEngine imports this module, and through ``locations`` the models, on
first use of the scope.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

__all__ = ['MODELS', 'SCOPE']

SCOPE = 'ean_mm'
MODELS = Registry('model', parent=MMENGINE_MODELS, scope=SCOPE, locations=['ean_mm.models'])
