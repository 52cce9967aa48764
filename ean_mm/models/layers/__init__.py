from .attention import (add_identity, build_attention_layer, norm_and_attention,
                        resolve_attention_cfg)
from .coord_attention import CoordAttention
from .ean import EAN, ean_export_form, set_ean_implementation
from .se import SE

__all__ = ['EAN', 'ean_export_form', 'set_ean_implementation', 'SE', 'CoordAttention',
           'build_attention_layer', 'resolve_attention_cfg', 'norm_and_attention',
           'add_identity']
