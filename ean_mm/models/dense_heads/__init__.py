from .ssd_head import CompatSSDHead

__all__ = ['CompatSSDHead']
