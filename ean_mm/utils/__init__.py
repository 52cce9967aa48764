from .config import (finish_distributed, flush_denormals_on_cpu, load_config,
                     setup_cpu_distributed)
from .detectors import box_head_classes
from .errors import InputError, exit_on_input_error
from .files import atomic_write
from .logging import quiet_mmengine
from .preflight import check_config_inputs, check_runner_checkpoint, explain_invalid_json

__all__ = [
    'InputError', 'exit_on_input_error', 'load_config', 'finish_distributed', 'flush_denormals_on_cpu', 'setup_cpu_distributed',
    'check_config_inputs', 'check_runner_checkpoint', 'explain_invalid_json', 'quiet_mmengine', 'atomic_write',
    'box_head_classes'
]
