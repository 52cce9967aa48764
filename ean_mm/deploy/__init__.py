"""Detectors out of PyTorch: end2end tensor programs (mmdeploy's contract) and ONNX export.
Importing this package needs no ONNX packages; :func:`export_onnx` needs the ``deploy`` extra."""
from .end2end import (End2EndFasterRCNN, End2EndDenseHead, detections_to_list, end2end_detector,
                      top_detections)
from .export import INPUT_NAMES, OUTPUT_NAMES, check_input_shape, export_onnx, input_shape_of
from .nms_mask import nms_mask, onnx_translation_table
from .onnx_runtime import RUNTIMES, OnnxDetector, RuntimeSession, onnx_session, runtime_session

__all__ = [
    'End2EndFasterRCNN', 'End2EndDenseHead', 'end2end_detector', 'top_detections',
    'detections_to_list', 'export_onnx', 'input_shape_of', 'check_input_shape', 'INPUT_NAMES',
    'OUTPUT_NAMES', 'nms_mask', 'onnx_translation_table', 'OnnxDetector', 'onnx_session',
    'runtime_session', 'RuntimeSession', 'RUNTIMES'
]
