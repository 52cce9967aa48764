"""Speed, memory, Params and FLOPs of attention models against their plain twins
(``tools/analysis/benchmark.py``, ``tools/analysis/param_table.py``).

One concept a module: :mod:`.twins` (models and their plain twins), :mod:`.workload` (an
inference batch and a training step), :mod:`.timing` (interleaved rounds), :mod:`.memory`
(peak training memory in fresh processes), :mod:`.flops` (Params, FLOPs), :mod:`.ort`
(onnxruntime and OpenVINO), :mod:`.profiling` (torch.profiler), :mod:`.report` (ratios, markdown),
:mod:`.plot` (the chart), :mod:`.settings`, :mod:`.options`, :mod:`.run` (a whole run).
"""
from .flops import count_flops, count_params
from .options import Options
from .report import METHOD, TABLE_COLUMNS, TARGETS, markdown, summarize, target_lines
from .result import Result
from .run import run_benchmark, run_setting
from .settings import parse_settings
from .twins import (DEFAULT_MODELS, ModelSpec, build_classifier, build_detector, build_model,
                    config_spec, preset_spec, resolve, spec_of)
from .workload import Bench, detection_samples

__all__ = [
    'Options', 'ModelSpec', 'Result', 'Bench', 'DEFAULT_MODELS', 'METHOD', 'TABLE_COLUMNS',
    'TARGETS', 'preset_spec', 'config_spec', 'spec_of', 'resolve', 'build_classifier', 'build_detector',
    'build_model', 'detection_samples', 'count_params', 'count_flops', 'summarize', 'markdown',
    'target_lines', 'parse_settings', 'run_setting', 'run_benchmark'
]
