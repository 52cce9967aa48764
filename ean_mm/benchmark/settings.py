"""Settings of one run: ``cpu:<N>t[:bf16]`` or ``cuda[:bf16]`` each, or ``all``."""
import re
from typing import List, Optional

import torch

__all__ = ['parse_settings']

_SETTING = re.compile(r'^(cpu:(\d+)t|cuda)(:bf16)?$')


def parse_settings(values: Optional[List[str]], device: str = 'cpu',
                   threads: Optional[int] = None, amp: bool = False) -> List[dict]:
    """``[{'label', 'device', 'threads', 'amp'}]`` of ``values``; ``None``: the one setting of
    ``device``, ``threads``, ``amp``; ``['all']``: CPU 1 and 2 threads, 2 threads bf16, and
    CUDA plain and bf16 where there is a GPU. Raises ``ValueError`` on a bad value."""
    if values is None:
        label = f"{device}{f':{threads}t' if threads else ''}" + (':bf16' if amp else '')
        return [dict(label=label, device=device, threads=threads, amp=amp)]
    if values == ['all']:
        values = ['cpu:1t', 'cpu:2t', 'cpu:2t:bf16'] + \
            (['cuda', 'cuda:bf16'] if torch.cuda.is_available() else [])
    settings = []
    for value in values:
        m = _SETTING.match(value)
        if m is None:
            raise ValueError(f'--settings: {value!r} is not cpu:<N>t[:bf16] or cuda[:bf16]')
        if m.group(1) == 'cuda' and not torch.cuda.is_available():
            raise ValueError(f'--settings {value}: no CUDA device available')
        settings.append(dict(label=value, device='cuda' if m.group(1) == 'cuda' else 'cpu',
                             threads=int(m.group(2)) if m.group(2) else None,
                             amp=bool(m.group(3))))
    return settings
