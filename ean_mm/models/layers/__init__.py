from .coord_attention import CoordAttention
from .ean import EAN
from .se import SE

__all__ = ['EAN', 'SE', 'CoordAttention']
