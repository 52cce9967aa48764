from .io import (check_checkpoint_fits, check_output_path, compact_tensor, file_sha256,
                 format_keys, load_checkpoint_file, plain_data, save_checkpoint,
                 split_checkpoint, unloaded_tensors)
from .plain_start import ean_norm_pairs, start_from_plain
from .pretrained import EANPretrainedInit, PretrainedLoadingMixin, load_pretrained
from .safe_globals import allow_mmengine_checkpoint_globals, mmengine_checkpoint_safe_globals

__all__ = [
    'allow_mmengine_checkpoint_globals', 'mmengine_checkpoint_safe_globals', 'load_pretrained',
    'PretrainedLoadingMixin', 'EANPretrainedInit', 'ean_norm_pairs', 'start_from_plain',
    'load_checkpoint_file', 'split_checkpoint', 'check_output_path',
    'save_checkpoint', 'file_sha256', 'compact_tensor', 'plain_data', 'format_keys',
    'check_checkpoint_fits', 'unloaded_tensors'
]
