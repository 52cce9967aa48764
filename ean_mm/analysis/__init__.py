from .cam import (DetectionCam, cam_method, classifier_cams, detection_cams, detector_stage,
                  find_layer, last_stage, peak)

__all__ = ['cam_method', 'find_layer', 'last_stage', 'detector_stage', 'classifier_cams',
           'detection_cams', 'DetectionCam', 'peak']
