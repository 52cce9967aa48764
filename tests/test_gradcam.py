"""tools/analysis/gradcam.py and ean_mm.analysis: the CAM of a classifier trained here peaks
inside the one object of a synthetic image; detection CAMs for SSDLite and Faster R-CNN; the grid
layout; clear errors."""
import os.path as osp

import numpy as np
import pytest
import torch
from conftest import ROOT, load_tool
from ean_mm.apis import init_model, prepare_image
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.structures import DataSample
from PIL import Image

from ean_mm.analysis import classifier_cams, detection_cams, detector_stage, find_layer, peak
from ean_mm.utils import InputError

pytest.importorskip('pytorch_grad_cam')
gradcam = load_tool('tools/analysis/gradcam.py')
msd = load_tool('tools/misc/make_synthetic_data.py')
SIZE, INPUT = 128, 112  # the classifier's test pipeline: ResizeEdge 128, CenterCrop 112
CROP = (SIZE - INPUT) // 2

# EAN-ResNet-18 with the EAN-ResNet-50 ImageNet recipe, three shape classes, smaller images.
CLASSIFIER_CFG = """
_base_ = '{root}/configs/pretrain/ean_r50_in1k.py'
model = dict(backbone=dict(depth=18, ean_groups=32),
             head=dict(num_classes=3, in_channels=512, topk=(1, )))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale={size}, edge='short'),
    dict(type='CenterCrop', crop_size={input}),
    dict(type='PackInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
"""


def shape_image(folder, label: int, seed: int, size: int = SIZE):
    """A synthetic classification image (one large shape of class ``label``) and its box."""
    img, inst = msd.make_classification_image(np.random.default_rng(seed), (size, size), label)
    path = folder / f'{label}_{seed}.png'
    img.save(path)
    return str(path), inst.box


@pytest.fixture(scope='module')
def classifier(tmp_path_factory):
    """(config, checkpoint): EAN-ResNet-18 trained 30 steps on 24 generated shape images.

    The checkpoint holds what a Runner checkpoint holds for inference: ``state_dict`` and
    ``meta['dataset_meta']['classes']`` (open-mmlab/mmengine ``mmengine/runner/runner.py`` @
    0050ff70b73e047defe9db0c3bb01555038596b7 ``Runner.save_checkpoint``;
    read so by open-mmlab/mmpretrain ``mmpretrain/apis/model.py`` @
    6847d20d57689aa016b5860381312daa6e23b647 ``get_model``)."""
    folder = tmp_path_factory.mktemp('cam_cls')
    config = folder / 'ean_r18_shapes.py'
    config.write_text(CLASSIFIER_CFG.format(root=ROOT, size=SIZE, input=INPUT))
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(str(config))
    model = MMPRETRAIN_MODELS.build(cfg.model)
    model.init_weights()
    model.cfg, model.scope, model.classes = cfg, 'mmpretrain', None
    images = [shape_image(folder, i % 3, 100 + i)[0] for i in range(24)]
    batches = [prepare_image(model, p)[0] for p in images]
    labels = [i % 3 for i in range(24)]
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9))
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        idx = torch.randperm(24, generator=g)[:8].tolist()
        data = dict(inputs=torch.cat([batches[i] for i in idx]),
                    data_samples=[DataSample().set_gt_label(labels[i]) for i in idx])
        model.train()
        losses = model._run_forward(data, mode='loss')
        optim.update_params(model.parse_losses(losses)[0])
    checkpoint = folder / 'ean_r18_shapes.pth'
    torch.save({'meta': {'dataset_meta': {'classes': list(msd.SHAPE_KINDS)}},
                'state_dict': model.state_dict()}, checkpoint)
    return str(config), str(checkpoint)


def test_classifier_cam_peaks_inside_the_object(classifier, tmp_path):
    model = init_model(*classifier, 'cpu')
    inside = 0
    for label in range(3):
        path, (x1, y1, x2, y2) = shape_image(tmp_path, label, 7 + label)
        inputs, _, _ = prepare_image(model, path)
        cams, classes = classifier_cams(model, inputs, 'backbone.layer4', target_class=label)
        assert cams.shape == (1, INPUT, INPUT) and classes == [label]
        x, y = peak(cams[0])
        inside += x1 - CROP <= x < x2 - CROP and y1 - CROP <= y < y2 - CROP
    assert inside == 3


def test_cls_grid_layout_and_errors(classifier, tmp_path, capsys):
    images = [shape_image(tmp_path, i, 50 + i)[0] for i in range(2)]
    out = tmp_path / 'grid.png'
    config, checkpoint = classifier
    path, rows, cols = gradcam.main(['cls', config, checkpoint, config, checkpoint, '--images',
                                     *images, '--out', str(out), '--method', 'GradCAMPlusPlus'])
    assert (rows, cols) == (2, 3) and path == str(out)  # a row per image, image + 2 models
    width, height = Image.open(out).size
    assert abs(width / height - 3 / 2) < 0.15

    def error(*argv) -> str:
        with pytest.raises(SystemExit) as exc:
            gradcam.exit_on_input_error(lambda: gradcam.main(list(argv)))
        assert exc.value.code == 1
        return capsys.readouterr().err

    base = ['cls', config, checkpoint, '--images', images[0], '--out', str(out)]
    err = error(*base, '--target-layer', 'backbone.layer9')
    assert "no layer 'backbone.layer9'" in err and 'backbone has: ' in err and 'layer4' in err
    with pytest.raises(InputError, match=r"backbone has: .*layer1.*layer4"):
        find_layer(init_model(config, checkpoint, 'cpu'), 'backbone.layer9')
    assert '--target-class 3 is out of range: the classifier has 3 classes' in \
        error(*base, '--target-class', '3')
    assert "unknown CAM method 'NoCAM'" in error(*base, '--method', 'NoCAM')
    assert 'image not found' in error('cls', config, checkpoint, '--images', 'none.png',
                                      '--out', str(out))


def test_detection_cams_for_both_detector_families(tmp_path, capsys):
    # Mechanics on untrained detectors (weights saved here): a CAM per detection, at the input's
    # size, finite and not constant; mmdet's detaching helper restored afterwards.
    from mmdet.models.dense_heads import base_dense_head
    helper = base_dense_head.select_single_mlvl
    path, _ = shape_image(tmp_path, 1, 3, 160)
    small = {'test_dataloader.dataset.pipeline.1.scale': (160, 160)}  # the Resize step
    for config, layer, options in (
            ('configs/demo/ssdlite320_ean_mobilenext_shapes.py', 'backbone.layer8',
             dict(small, **{'model.test_cfg.score_thr': 0.0})),
            ('configs/faster_rcnn_ean_r50_voc.py', 'neck.fpn_convs.0',
             dict(small, **{'model.test_cfg.rcnn.score_thr': 0.0}))):
        model = init_model(str(ROOT / config), _random_checkpoint(config, tmp_path),
                                   'cpu', options)
        # the default layer: upstream of every detection (SSD's stride-16 tap; FPN: last stage)
        assert detector_stage(model) == ('backbone.layer5' if 'ssdlite' in config
                                         else 'backbone.layer4')
        inputs, samples, _ = prepare_image(model, path)
        found = detection_cams(model, inputs, samples, layer, top_k=2, score_thr=0.0)
        assert len(found) == 2 and base_dense_head.select_single_mlvl is helper
        for det in found:
            assert det['cam'].shape == tuple(inputs.shape[2:]) and np.isfinite(det['cam']).all()
            assert det['cam'].max() > det['cam'].min()
        with pytest.raises(InputError, match='--target-class 99 is out of range'):
            detection_cams(model, inputs, samples, layer, target_class=99)
    config = 'configs/demo/ssdlite320_ean_mobilenext_shapes.py'  # the tool, on the lighter one
    written = gradcam.main(['det', str(ROOT / config), _random_checkpoint(config, tmp_path),
                            path, '--out-dir', str(tmp_path / 'cams'), '--score-thr', '0.0',
                            '--top-k', '2', '--target-layer', 'backbone.layer8',
                            '--cfg-options', 'model.test_cfg.score_thr=0.0',
                            'test_dataloader.dataset.pipeline.1.scale=(160,160)'])
    assert len(written) == 1 and osp.getsize(written[0]) > 5000


@pytest.mark.slow
@pytest.mark.parametrize('config,score_thr', [
    ('configs/retinanet_ean_r50_coco.py', 'model.test_cfg.score_thr'),
    ('configs/mask_rcnn_ean_r50_coco.py', 'model.test_cfg.rcnn.score_thr'),
    ('configs/cascade_rcnn_ean_r50_coco.py', 'model.test_cfg.rcnn.score_thr'),
    ('configs/rtmdet_s_ean_coco.py', 'model.test_cfg.score_thr')])
def test_detection_cams_for_the_stock_detectors(config, score_thr, stock_runs, tmp_path):
    # The one-iteration runs (tests/test_stock_detectors.py); the default layer, the backbone's
    # last stage (FPN and CSPNeXt-PAFPN pass it to every level).
    checkpoint = stock_runs(config)['checkpoint']
    path, _ = shape_image(tmp_path, 1, 3, 160)
    options = {score_thr: 0.0}  # 160 px: the Resize, and RTMDet's Pad after it
    for i, step in enumerate(Config.fromfile(str(ROOT / config)).test_dataloader.dataset.pipeline):
        for kind, arg in (('Resize', 'scale'), ('Pad', 'size')):
            if step['type'] == kind:
                options[f'test_dataloader.dataset.pipeline.{i}.{arg}'] = (160, 160)
    model = init_model(str(ROOT / config), str(checkpoint), 'cpu', options)
    layer = detector_stage(model)
    assert layer == ('backbone.stage4' if 'rtmdet' in config else 'backbone.layer4')
    inputs, samples, _ = prepare_image(model, path)
    found = detection_cams(model, inputs, samples, layer, top_k=1, score_thr=0.0)
    assert len(found) == 1
    cam = found[0]['cam']
    assert cam.shape == tuple(inputs.shape[2:]) and np.isfinite(cam).all() and cam.max() > cam.min()


def _random_checkpoint(config: str, folder) -> str:
    """A checkpoint of ``config``'s detector with its initial weights, under ``state_dict`` as
    open-mmlab/mmengine ``mmengine/runner/runner.py`` @
    0050ff70b73e047defe9db0c3bb01555038596b7 ``Runner.save_checkpoint`` saves it."""
    from mmdet.registry import MODELS
    path = folder / (osp.basename(config) + '.pth')
    if not path.exists():
        cfg = Config.fromfile(str(ROOT / config))
        cfg.model.backbone.init_cfg = None
        init_default_scope('mmdet')
        model = MODELS.build(cfg.model)
        model.init_weights()
        torch.save({'state_dict': model.state_dict()}, path)
    return str(path)
