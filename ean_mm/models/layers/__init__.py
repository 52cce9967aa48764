from .ean import EAN

__all__ = ['EAN']
