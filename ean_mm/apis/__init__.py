from .inference import init_model, prepare_image, test_pipeline

__all__ = ['init_model', 'prepare_image', 'test_pipeline']
