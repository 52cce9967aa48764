"""Writing output files whole: a temporary file beside the target, renamed over it at the end."""
import os
import os.path as osp
import secrets
from contextlib import contextmanager
from typing import BinaryIO, Iterator

__all__ = ['atomic_write']


@contextmanager
def atomic_write(path: str) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` when the block ends without an error; on an error
    nothing is left behind. Parent folders are created. The file gets the permissions of any
    new file there (``0o666`` less the umask), not ``tempfile``'s private ``0o600``."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    while True:
        tmp = osp.join(folder, f'.{osp.basename(path)}.{secrets.token_hex(4)}.tmp')
        try:  # O_EXCL: a name of our own; mode 0o666 so the kernel applies the umask
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    os.close(fd)
    try:
        with open(tmp, 'wb') as f:  # by name: writers that read ``f.name`` (onnx) get a path
            yield f
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
