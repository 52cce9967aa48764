"""The options of a benchmark run (``tools/analysis/benchmark.py``'s flags, same names and
defaults)."""
from dataclasses import dataclass, field
from typing import List, Optional

from .twins import DEFAULT_MODELS

__all__ = ['Options']


@dataclass
class Options:
    """What to measure, how often and where the reports go."""
    models: List[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    batch_size: Optional[int] = None  # None: each family's default (ModelSpec.batch_size)
    img_size: int = 224
    rounds: int = 10  # interleaved timing rounds
    warmup: int = 2  # untimed iterations per model and mode before the rounds
    iters: int = 1  # iterations per model, mode and round (time = their mean)
    device: str = 'cpu'
    threads: Optional[int] = None  # torch.set_num_threads
    amp: bool = False  # bf16 autocast
    settings: Optional[List[dict]] = None  # see ean_mm.benchmark.settings.parse_settings
    ean_impl: str = 'auto'
    no_memory: bool = False
    no_train: bool = False  # inference only: no training steps timed
    mem_steps: int = 2  # measured training steps per memory probe
    mem_repeats: int = 1  # fresh processes per model for memory (median)
    mem_jobs: int = 2  # memory probes run side by side
    no_flops: bool = False
    onnxruntime: bool = False  # also time the exported models in onnxruntime
    openvino: bool = False  # ... and in OpenVINO
    export_forms: Optional[List[str]] = None  # EAN's export forms to time (None: default)
    profile: int = 0  # torch.profiler iterations per model and mode (0: none)
    out_dir: str = 'work_dirs/benchmark'
    name: Optional[str] = None  # file stem of the reports (None: ean_impl)
