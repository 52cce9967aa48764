"""Safe (``weights_only``) loading of MMEngine 0.10.7 checkpoints under torch >= 2.6.

The allow-list holds exactly the globals an MMEngine ``Runner`` checkpoint holds beyond torch's
defaults (all in ``message_hub``): ``HistoryBuffer``, ``numpy.ndarray``, ``numpy.dtype`` and the
numeric/bool dtype classes, numpy 1's and 2's ``multiarray._reconstruct`` and ``scalar``, and
``builtins.getattr`` bound to :func:`_history_buffer_statistic`, which resolves only
``HistoryBuffer.{min,max,current,mean}``. ``weights_only`` stays on; anything else is refused.
How the list was found and why each entry is safe: ``docs/compat.md``.

Sources (open-mmlab/mmengine): ``mmengine/runner/runner.py`` @
0050ff70b73e047defe9db0c3bb01555038596b7 ``Runner.save_checkpoint`` (``message_hub`` entry);
``mmengine/logging/history_buffer.py`` @ c9d8c463745a01ea0db79339b994613089bf7da8
(``_set_default_statistics``, ``__getstate__``: the statistics methods are pickled, as
``getattr(HistoryBuffer, name)`` under pickle protocol 2).
"""
import pickle
from typing import Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

__all__ = ['allow_mmengine_checkpoint_globals', 'mmengine_checkpoint_safe_globals']

SafeGlobal = Union[Callable, Tuple[Callable, str]]

#: The statistics methods ``HistoryBuffer._set_default_statistics`` puts into the table that
#: ``HistoryBuffer.__getstate__`` pickles.
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')

#: Numpy dtype codes whose dtype classes may be restored: bool, signed and unsigned integers,
#: floating point and complex numbers (fixed-size numeric data, no Python objects).
_NUMERIC_DTYPE_CODES = ('?', 'b', 'h', 'i', 'l', 'q', 'B', 'H', 'I', 'L', 'Q', 'e', 'f', 'd', 'g',
                        'F', 'D', 'G')

#: Where numpy 1 and numpy 2 put the functions numpy arrays and scalars pickle with.
_NUMPY_MULTIARRAY_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')


def _history_buffer_statistic(obj: object, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` during safe loading.

    Resolves only ``getattr(HistoryBuffer, <default statistic>)``, the one use of ``getattr`` in
    an MMEngine checkpoint; everything else is refused.
    """
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a weights-only checkpoint load: only '
        f'HistoryBuffer statistics {_HISTORY_BUFFER_STATISTICS} are (ean_mm.checkpoint.safe_globals).')


def _numpy_dtype_classes() -> List[type]:
    """The classes of numpy's numeric and bool dtypes (``numpy.dtype`` itself before 1.20)."""
    classes = {type(np.dtype(code)) for code in _NUMERIC_DTYPE_CODES}
    return sorted(classes, key=lambda cls: cls.__qualname__)


def mmengine_checkpoint_safe_globals() -> List[SafeGlobal]:
    """The entries :func:`allow_mmengine_checkpoint_globals` passes to ``add_safe_globals``.

    Usable on its own with the scoped ``torch.serialization.safe_globals(...)`` context manager.
    Entries are either a class, or a ``(object, 'module.qualname')`` pair binding the name found in
    the pickle to an object of the installed numpy / to the restricted ``getattr``.
    """
    reconstruct = np.zeros(1).__reduce__()[0]  # multiarray._reconstruct
    scalar = np.float64(0).__reduce__()[0]  # multiarray.scalar
    entries: List[SafeGlobal] = [HistoryBuffer, np.ndarray, np.dtype]
    for module in _NUMPY_MULTIARRAY_MODULES:
        entries.append((reconstruct, f'{module}._reconstruct'))
        entries.append((scalar, f'{module}.scalar'))
    entries.extend(cls for cls in _numpy_dtype_classes() if cls is not np.dtype)
    entries.append((_history_buffer_statistic, 'builtins.getattr'))
    return entries


def allow_mmengine_checkpoint_globals() -> List[str]:
    """Allow-list what MMEngine checkpoints contain for torch's ``weights_only`` loading.

    Makes ``Runner(resume=True)``, ``Runner(load_from=...)`` / ``Runner.test``,
    ``mmengine.runner.load_checkpoint``, ``_load_checkpoint`` and ``CheckpointLoader`` work with
    MMEngine 0.10.7 checkpoints under torch >= 2.6 while keeping the safe unpickler (see the module
    docstring for the exact list and the reasons). Idempotent: torch keeps the allow-list in a
    set, so calling it again adds nothing. A no-op on torch versions without
    ``add_safe_globals`` (< 2.4), which never load with ``weights_only`` by default.

    Returns:
        list[str]: The full names that are allow-listed, as they appear in a pickle (empty on
        torch < 2.4).
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:
        return []
    entries = mmengine_checkpoint_safe_globals()
    add_safe_globals(entries)
    return [_full_name(entry) for entry in entries]


def _full_name(entry: SafeGlobal) -> str:
    """The name under which torch's unpickler looks an allow-list entry up."""
    if isinstance(entry, tuple):
        return entry[1]
    return f'{entry.__module__}.{entry.__qualname__}'
