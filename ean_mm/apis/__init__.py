from .inference import dataset_classes, init_model, prepare_image, test_pipeline

__all__ = ['init_model', 'prepare_image', 'test_pipeline', 'dataset_classes']
