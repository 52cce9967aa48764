"""The process a benchmark runs in: threads, denormals, the machine's description, progress
lines on stderr."""
import datetime
import os
import platform
import resource
import sys
from typing import Dict, Optional

import torch

__all__ = ['setup_runtime', 'machine_info', 'runtime_versions', 'minor_faults', 'log']


def setup_runtime(device: str, threads: Optional[int]) -> None:
    """``torch.set_num_threads(threads)`` (if given); on CPU, flush denormals to zero."""
    if threads:
        torch.set_num_threads(threads)
    if device == 'cpu':
        torch.set_flush_denormal(True)


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> Dict[str, str]:
    """Date, host, CPU, threads, versions, device and load average, as the reports show them."""
    import mmcv
    import mmdet
    import mmengine
    import mmpretrain
    info = {
        'date': datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'),
        'host': platform.node(),
        'cpu': f'{_cpu_model()} ({os.cpu_count()} logical CPUs visible)',
        'torch threads': str(torch.get_num_threads()),
        'python': platform.python_version(),
        'versions': (f'torch {torch.__version__}, mmengine {mmengine.__version__}, '
                     f'mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, '
                     f'mmpretrain {mmpretrain.__version__}'),
        'device': 'cpu',
    }
    if device.type == 'cuda':
        info['device'] = f'cuda: {torch.cuda.get_device_name(device)}'
    # glibc's malloc returns large blocks to the kernel, which then faults fresh pages in: its
    # settings change CPU inference times (docs/speed_and_memory.md)
    allocator = {k: v for k, v in os.environ.items()
                 if k.startswith('MALLOC_') or k == 'LD_PRELOAD'}
    info['allocator'] = (', '.join(f'{k}={v}' for k, v in sorted(allocator.items()))
                         or 'the C library\'s defaults')
    try:
        info['load average (start)'] = ', '.join(f'{v:.2f}' for v in os.getloadavg())
    except OSError:
        pass
    return info


def runtime_versions(opts) -> Dict[str, str]:
    """``{'onnxruntime': version, 'openvino': version}`` of the runtimes ``opts`` times."""
    out = {}
    if opts.onnxruntime:
        import onnxruntime
        out['onnxruntime'] = onnxruntime.__version__
    if opts.openvino:
        import openvino
        out['openvino'] = openvino.__version__
    return out


def minor_faults() -> int:
    """Minor page faults of this process so far (``getrusage``): each maps a fresh, zeroed page
    into memory the process touches for the first time."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def log(msg: str) -> None:
    """A progress line on stderr."""
    print(msg, file=sys.stderr, flush=True)
