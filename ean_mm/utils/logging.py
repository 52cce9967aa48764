"""Logging helpers."""
import logging
from contextlib import contextmanager
from typing import Iterator

from mmengine.logging import MMLogger

__all__ = ['quiet_mmengine']


@contextmanager
def quiet_mmengine(level: int = logging.WARNING) -> Iterator[None]:
    """Raise the current MMEngine logger's level to at least ``level`` for the block
    (e.g. around ``init_weights()``, which logs every parameter at INFO)."""
    logger = MMLogger.get_current_instance()
    old = logger.level
    logger.setLevel(max(level, old))
    try:
        yield
    finally:
        logger.setLevel(old)
