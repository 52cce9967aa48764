"""The one error ean_mm raises for input that does not fit."""
import os
import sys
from typing import Any, Callable

__all__ = ['InputError', 'exit_on_input_error']


class InputError(ValueError):
    """A config, checkpoint or data file does not fit; the message names it and the fix.

    Tools print it as one ``error:`` line and exit 1; nothing is written.
    """


def exit_on_input_error(main: Callable[[], Any]) -> Any:
    """Call a tool's ``main``; an :class:`InputError` becomes one ``error:`` line on stderr
    (rank 0 only under torchrun) and exit status 1, without a stack dump."""
    try:
        return main()
    except InputError as err:
        if int(os.environ.get('RANK', '0')) == 0:
            print(f'error: {err}', file=sys.stderr)
        sys.exit(1)
