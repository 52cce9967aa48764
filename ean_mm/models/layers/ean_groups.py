"""EAN's group count ``G`` checked against every EAN layer of a network, so that the hint names
values that divide the channels of all of them, not of the first layer that fails only."""
import functools
import math
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, List, Optional, Tuple

__all__ = ['fit_groups', 'checked_groups', 'checks_ean_groups']

#: ``(in_channels, groups)`` of each EAN built inside :func:`checked_groups`, else ``None``.
_LAYERS: ContextVar[Optional[List[Tuple[int, object]]]] = ContextVar('ean_layers', default=None)


def _valid(channels: int, groups) -> bool:
    return (isinstance(groups, int) and not isinstance(groups, bool) and groups >= 1
            and channels % groups == 0)


def _suggest(channels: List[int], groups) -> str:
    """The one or two divisors of every value of ``channels`` closest to ``groups``."""
    common = math.gcd(*channels)
    target = groups if isinstance(groups, int) and groups > 0 else 1
    divisors = [d for d in range(1, common + 1) if common % d == 0]
    near = sorted(sorted(divisors, key=lambda d: (abs(d - target), d))[:2])
    return ' or '.join(map(str, near))


def _listed(values) -> str:
    return ', '.join(map(str, sorted(set(values))))


def fit_groups(in_channels: int, groups) -> int:
    """``groups`` for an EAN of ``in_channels`` channels when it divides them. Otherwise a
    ``ValueError`` naming divisors of ``in_channels``; inside :func:`checked_groups` the layer
    is recorded and ``1`` returned instead (a placeholder: the block raises at its end)."""
    layers = _LAYERS.get()
    if layers is not None:
        layers.append((in_channels, groups))
    if _valid(in_channels, groups):
        return groups
    if layers is None:
        raise ValueError(f'EAN: groups={groups!r} must be a positive integer that divides '
                         f'in_channels={in_channels}; choose a divisor of {in_channels}: '
                         f'{_suggest([in_channels], groups)}.')
    return 1


@contextmanager
def checked_groups(owner: str) -> Iterator[None]:
    """Build a network's EAN layers inside the block: a group count that does not divide the
    channels of some of them raises one ``ValueError`` at the end, naming ``owner``, every EAN
    layer's channels and the counts that divide them all. Nested blocks: the outermost one
    reports."""
    if _LAYERS.get() is not None:
        yield
        return
    layers: List[Tuple[int, object]] = []
    token = _LAYERS.set(layers)
    try:
        yield
    finally:
        _LAYERS.reset(token)
    failing: List[object] = []
    for c, g in layers:
        if not _valid(c, g) and g not in failing:
            failing.append(g)
    for groups in failing[:1]:
        same = [c for c, g in layers if g == groups]
        bad = [c for c in same if not _valid(c, groups)]
        raise ValueError(
            f'{owner}: EAN groups={groups!r} must be a positive integer that divides the '
            f'channels of each of its EAN layers ({_listed(same)}); it does not divide '
            f'{_listed(bad)}. Choose one that divides them all: {_suggest(same, groups)} (any '
            f'divisor of {math.gcd(*same)}).')


def checks_ean_groups(init: Callable) -> Callable:
    """Decorate a network's ``__init__``: its EAN layers are built inside
    :func:`checked_groups`, named by the network's class."""
    @functools.wraps(init)
    def wrapped(self, *args, **kwargs) -> None:
        with checked_groups(type(self).__name__):
            init(self, *args, **kwargs)
    return wrapped
