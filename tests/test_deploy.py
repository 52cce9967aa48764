"""ONNX export of EAN layers (both exporters, every export form) and of whole detectors
(tools/deployment), checked in onnxruntime and OpenVINO against the PyTorch model's own
predictions."""
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import onnx
import onnxruntime
import pytest
import torch
from conftest import ROOT, load_tool
from detection_runs import small_run_options
from mmengine.config import DictAction
from torchvision.ops import box_iou

from ean_mm.apis import init_model, prepare_image
from ean_mm.deploy import (RUNTIMES, OnnxDetector, detections_to_list, end2end_detector,
                           runtime_session)
from ean_mm.models import EAN, ean_export_form
from ean_mm.models.backbones import EANMobileNeXt, EANResNet
from ean_mm.models.layers.ean_export import EXPORT_FORMS
from ean_mm.utils import InputError

export_tool = load_tool('tools/deployment/export_onnx.py')
infer_tool = load_tool('tools/deployment/onnx_infer.py')
Detections = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # boxes, scores, labels


# ------------------------------------------------------------------ EAN layers
#: The normalisation operator of the export forms that have one.
NORM_OPS = {'layernorm': 'LayerNormalization', 'instance': 'InstanceNormalization'}


def _nodes(model: onnx.ModelProto) -> list:
    nodes = list(model.graph.node)
    for function in model.functions:  # the dynamo exporter may keep modules as functions
        nodes += list(function.node)
    return nodes


def assert_plain_onnx(model: onnx.ModelProto) -> None:
    """Only standard ONNX operators, EAN's sigmoid among them (no custom op, no fallback)."""
    nodes = _nodes(model)
    domains = {n.domain for n in nodes} - {f.domain for f in model.functions}
    assert domains <= {'', 'ai.onnx'}, domains
    ops = {n.op_type for n in nodes}
    assert 'Sigmoid' in ops and ops.isdisjoint({'PythonOp', 'ATen'}), ops


def _export_and_run(net: torch.nn.Module, x: torch.Tensor, path: Path, dynamo: bool):
    torch.onnx.export(net, (x, ), str(path), dynamo=dynamo,
                      opset_version=18 if dynamo else 17)
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    return onnx.load(str(path)), session.run(None, {session.get_inputs()[0].name: x.numpy()})


# With the TorchScript-based exporter; the dynamo exporter's EAN layers are checked inside both
# detectors below.
@pytest.mark.parametrize('backbone', ['ean_r18', 'ean_mobilenext'])
def test_ean_backbones_export_to_plain_onnx_ops(backbone, tmp_path):
    net = (EANResNet(depth=18, ean_groups=32) if backbone == 'ean_r18' else
           EANMobileNeXt(widen_factor=0.5)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want = net(x)
        model, got = _export_and_run(net, x, tmp_path / 'ean.onnx', dynamo=False)
    assert_plain_onnx(model)
    assert len(got) == len(want)
    for out, ref in zip(got, want):
        torch.testing.assert_close(torch.from_numpy(out), ref, rtol=1e-4, atol=1e-4)


def _random_ean(channels: int, groups: int, omega: str = 'l2'):
    from ean_mm.models.layers.ean import EAN
    layer = EAN(channels, groups=groups, omega=omega)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()  # away from the fresh layer's 0.5 x
    return layer


def test_ean_export_form_sets_every_layer_then_restores_each():
    net = torch.nn.Sequential(_random_ean(16, 4), _random_ean(16, 4))
    net[1].export_form = 'moments'
    with ean_export_form(net, 'grouped') as count:
        assert count == 2 and [m.export_form for m in net] == ['grouped', 'grouped']
    assert [m.export_form for m in net] == [EXPORT_FORMS[0], 'moments']
    with pytest.raises(RuntimeError), ean_export_form(net, 'centered'):
        raise RuntimeError  # an export that fails
    assert [m.export_form for m in net] == [EXPORT_FORMS[0], 'moments']
    with ean_export_form(net, None):  # no --ean-export-form: each layer's own
        assert [m.export_form for m in net] == [EXPORT_FORMS[0], 'moments']
    with pytest.raises(ValueError, match=r"export form must be one of .*got 'onnx'"):
        with ean_export_form(net, 'onnx'):
            pass


@pytest.mark.parametrize('form', EXPORT_FORMS)
@pytest.mark.parametrize('omega', ['l2', 'l2_mean', 'l1_mean'])
def test_export_form_is_the_equations(omega, form):
    from test_ean import ean_reference
    layer = _random_ean(64, 8, omega).double()
    layer.export_form = form
    params = [layer.gn.weight, layer.gn.bias, layer.alpha, layer.delta]
    for shape in ((2, 64, 9, 7), (2, 64, 1, 1)):  # 1x1 planes: Eqn 5 gives 0
        x = torch.randn(*shape, dtype=torch.float64) * 2 + 1
        with torch.no_grad():
            want = ean_reference(x, *params, groups=8, omega=omega)  # Eqns 5-9 step by step
            torch.testing.assert_close(layer.forward_for_export(x), want, rtol=1e-12,
                                       atol=1e-12)
        assert not torch.allclose(want, 0.5 * x)


@pytest.mark.parametrize('form', EXPORT_FORMS)
def test_every_export_form_runs_in_both_runtimes(form, tmp_path):
    """Each form holds only standard ONNX operators and gives PyTorch's values in onnxruntime
    and OpenVINO; the TorchScript-based exporter for every form, the dynamo one (the detectors'
    exporter) for the default form, which normalises the input itself with LayerNormalization
    (no Reshape of the tensor); 'instance' with InstanceNormalization."""
    layer = _random_ean(48, 6).eval()
    assert layer.export_form == EXPORT_FORMS[0] == 'layernorm'  # the default
    layer.export_form = form
    x = torch.randn(2, 48, 7, 5) * 2 + 0.5
    with torch.no_grad():
        want = layer(x)  # the C++ kernel
    for dynamo in ((False, True) if form == EXPORT_FORMS[0] else (False, )):
        path = tmp_path / f'{form}-{dynamo}.onnx'
        with torch.no_grad():
            torch.onnx.export(layer, (x, ), str(path), dynamo=dynamo,
                              opset_version=18 if dynamo else 17)
        model = onnx.load(str(path))
        assert_plain_onnx(model)
        ops = [n.op_type for n in model.graph.node]
        norm = NORM_OPS.get(form)
        if norm:  # the tensor path has no Reshape (TorchScript's file may reshape parameters)
            assert norm in ops, ops
            assert 'Reshape' not in ops or not dynamo and form == 'layernorm', ops
        for backend in RUNTIMES:
            session = runtime_session(str(path), backend)
            got = session.run({session.input_names[0]: x.numpy()})[0]
            torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-5,
                                       msg=lambda m: f'{form} {backend} dynamo={dynamo}: {m}')


def test_library_imports_without_onnx_packages(monkeypatch):
    import ast
    for path in (ROOT / 'ean_mm').rglob('*.py'):  # no module-level import of the extra
        for node in ast.parse(path.read_text()).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ''] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split('.')[0] in ('onnx', 'onnxruntime', 'onnxscript', 'openvino')
                           for n in names), (path, names)
    for name in ('onnx', 'onnxruntime', 'onnxscript', 'openvino'):
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now fails
    from ean_mm.deploy import export_onnx
    with pytest.raises(InputError, match=r'pip install -e "\.\[deploy\]"'):
        export_onnx(None, 'x.onnx', (320, 320))
    with pytest.raises(InputError, match='onnxruntime is not installed'):
        OnnxDetector('x.onnx')
    with pytest.raises(InputError, match=r'openvino is not installed: pip install -e "\.\[deploy'):
        OnnxDetector('x.onnx', backend='openvino')
    with pytest.raises(InputError, match=r"must be one of \('onnxruntime', 'openvino'\)"):
        runtime_session('x.onnx', 'tensorrt')


# ------------------------------------------------------------------ whole detectors
def _options(config: str, data_root: Path, *overrides: str) -> Tuple[List[str], dict]:
    """The tiny runs' ``--cfg-options`` (generated data, 160 px input) and ``overrides`` as
    words and as a dict; the detectors keep their configs' test thresholds otherwise."""
    words = [o for o in small_run_options(config, data_root) if 'score_thr' not in o]
    words += list(overrides)
    parser = __import__('argparse').ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return words, parser.parse_args(['--cfg-options', *words]).cfg_options


def _val_images(data_root: Path) -> List[str]:
    images = sorted(p for p in data_root.rglob('*.jpg') if 'val' in str(p) or 'test' in str(p))
    assert len(images) >= 2, images
    return [str(p) for p in images[:2]]


def _export(run: dict, data: Dict[str, Path], out: Path, *extra: str,
            overrides: Tuple[str, ...] = (), form: Optional[str] = None) -> dict:
    """``run``'s checkpoint exported to ``out``, EAN in export form ``form`` (``None``: the
    default, without the flag)."""
    fmt = 'voc' if run['config'].endswith('_voc.py') else 'coco'
    words, options = _options(run['config'], data[fmt], *overrides)
    flag = ('--ean-export-form', form) if form else ()
    export_tool.main([run['config'], str(run['checkpoint']), '--out', str(out), *extra, *flag,
                      '--cfg-options', *words])
    return dict(run, onnx=out, options=options, words=words, images=_val_images(data[fmt]),
                form=form or EAN.export_form)


@pytest.fixture(scope='module')
def ssdlite_onnx(ssdlite_voc_run, detection_data, tmp_path_factory):
    """SSDLite EAN-MobileNeXt exported with a dynamic batch (run below with a batch of two)."""
    out = tmp_path_factory.mktemp('onnx') / 'ssdlite.onnx'
    return _export(ssdlite_voc_run, detection_data, out, '--shape', '160', '160',
                   '--dynamic-batch')


@pytest.fixture(scope='module')
def faster_rcnn_onnx(faster_rcnn_coco_run, detection_data, tmp_path_factory):
    out = tmp_path_factory.mktemp('onnx') / 'faster_rcnn.onnx'
    return _export(faster_rcnn_coco_run, detection_data, out, '--shape', '160', '160',
                   '--batch-size', '2', form='instance')


def _spread_heads(run: dict, folder: Path, cls_shift: float, reg_shift: float) -> dict:
    """``run`` with its checkpoint's dense-head outputs spread out: a one-iteration RetinaNet or
    RTMDet still scores every box near the focal loss's prior 0.01 and RTMDet's boxes are a pixel
    wide, too alike to tell a wrong export from a right one. Noise on the last conv layers'
    weights and biases (``bbox_head.<retina|rtm>_<cls|reg>``), class logits shifted by
    ``cls_shift``, box outputs by ``reg_shift``; everything else as trained."""
    checkpoint = torch.load(run['checkpoint'], map_location='cpu', weights_only=True)
    g = torch.Generator().manual_seed(0)
    state = checkpoint['state_dict']
    for key, value in state.items():
        match = re.match(r'bbox_head\.(retina|rtm)_(cls|reg)\.(?:\d+\.)?(weight|bias)$', key)
        if match:
            _, branch, kind = match.groups()
            noise = torch.randn(value.shape, generator=g)
            shift = cls_shift if branch == 'cls' else reg_shift
            state[key] = value + (noise * 0.5 + shift if kind == 'bias' else noise * 0.02)
    path = folder / Path(run['checkpoint']).name
    torch.save(checkpoint, path)
    return dict(run, checkpoint=path)


@pytest.fixture(scope='module')
def retinanet_onnx(stock_runs, detection_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp('onnx')
    run = _spread_heads(stock_runs('configs/retinanet_ean_r50_coco.py'), folder, 3.0, 0.0)
    return _export(run, detection_data, folder / 'retinanet.onnx', '--shape', '160', '160',
                   '--batch-size', '2')


@pytest.fixture(scope='module')
def rtmdet_onnx(stock_runs, detection_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp('onnx')
    run = _spread_heads(stock_runs('configs/rtmdet_s_ean_coco.py'), folder, 3.0, 1.5)
    # Fewer than max_per_img (300) detections: the generated images' flat backgrounds give many
    # boxes one score, and which of a tie makes the top-300 cut is the runtime's choice.
    return _export(run, detection_data, folder / 'rtmdet.onnx', '--shape', '160', '160',
                   '--batch-size', '2', overrides=('model.test_cfg.score_thr=0.4', ))


def _unexplained(mine: Detections, theirs: Detections, score_thr: float, iou_thr: float,
                 k: int) -> Tuple[int, List[str]]:
    """Match each detection of ``mine`` (best first) to one of ``theirs``: same label, box
    corners within a pixel, score within 1e-3. Returns ``(matched, unmatched that do not sit on a
    threshold)``: on the score threshold, on the top-``k`` cut, or at an IoU with a same-label
    detection on the NMS threshold (within 1e-3 / 1e-2)."""
    boxes, scores, labels = mine
    other_boxes, other_scores, other_labels = theirs
    used = torch.zeros(len(other_scores), dtype=torch.bool)
    matched, bad = 0, []
    cut = scores.min().item() if len(scores) == k else -1.0
    every_boxes, every_labels = torch.cat([boxes, other_boxes]), torch.cat([labels, other_labels])
    for i in scores.argsort(descending=True).tolist():
        ok = ((~used) & (other_labels == labels[i])
              & ((other_boxes - boxes[i]).abs().amax(-1) <= 1.0)
              & ((other_scores - scores[i]).abs() <= 1e-3))
        if ok.any():
            used[ok.nonzero()[0, 0]] = True
            matched += 1
            continue
        iou = box_iou(boxes[i:i + 1], every_boxes[every_labels == labels[i]])[0]
        if (abs(scores[i] - score_thr) <= 1e-3 or abs(scores[i] - cut) <= 1e-3
                or ((iou - iou_thr).abs() <= 1e-2).any()):
            continue
        bad.append(f'label {labels[i].item()} score {scores[i].item():.4f} box '
                   f'{[round(v, 1) for v in boxes[i].tolist()]}')
    return matched, bad


@pytest.mark.slow
@pytest.mark.parametrize('backend', RUNTIMES)
@pytest.mark.parametrize('exported', ['ssdlite_onnx', 'faster_rcnn_onnx', 'retinanet_onnx',
                                      'rtmdet_onnx'])
def test_runtime_matches_pytorch_predict(exported, backend, request):
    exported = request.getfixturevalue(exported)
    model = init_model(exported['config'], str(exported['checkpoint']),
                       cfg_options=exported['options'])
    batches = [prepare_image(model, image) for image in exported['images']]
    inputs = torch.cat([b[0] for b in batches])
    samples = [b[1][0] for b in batches]
    assert inputs.shape[-2:] == (160, 160)
    with torch.no_grad():
        want = [(r.pred_instances.bboxes, r.pred_instances.scores, r.pred_instances.labels)
                for r in model.predict(inputs, samples, rescale=False)]
    graph = onnx.load(str(exported['onnx']))
    assert_plain_onnx(graph)
    # EAN in the form asked for (Faster R-CNN: --ean-export-form instance; else the default)
    norms = dict(NORM_OPS)
    ops = {n.op_type for n in _nodes(graph)}
    assert norms.pop(exported['form']) in ops and ops.isdisjoint(norms.values()), ops
    detector = OnnxDetector(str(exported['onnx']), backend=backend)
    assert detector.classes and detector.classes == tuple(model.classes)  # the metadata read
    got = detections_to_list(*detector(inputs))
    wrapper = end2end_detector(model)
    thr, iou = getattr(wrapper, 'score_thr'), getattr(wrapper, 'iou')
    k = wrapper.max_per_img
    for ref, ort in zip(want, got):
        assert len(ref[1]) >= 10 and ref[1].max() > thr + 0.01  # real detections to compare
        for a, b in ((ref, ort), (ort, ref)):
            matched, bad = _unexplained(a, b, thr, iou, k)
            assert not bad, bad[:5]
            assert matched >= 0.9 * len(a[1]), (matched, len(a[1]))


@pytest.mark.slow
@pytest.mark.parametrize('backend', RUNTIMES)
def test_onnx_infer_prints_and_draws(ssdlite_onnx, backend, tmp_path, capsys):
    results = infer_tool.main([str(ssdlite_onnx['onnx']), ssdlite_onnx['config'],
                               *ssdlite_onnx['images'], '--out-dir', str(tmp_path),
                               '--score-thr', '0.0', '--backend', backend, '--threads', '1',
                               '--cfg-options', *ssdlite_onnx['words']])
    printed = capsys.readouterr().out
    from mmcv import imread
    for image, result in results.items():
        assert f'{image}: {len(result["scores"])} detections, {len(result["scores"])} scoring' \
            in printed
        assert len(result['scores']) > 0
        drawn, original = imread(result['out_file']), imread(image)
        assert drawn.shape == original.shape and (drawn != original).any()
        boxes = result['bboxes']  # in the image's pixels (256 px; the input was 160)
        assert boxes.max() <= 256 and boxes[:, 2:].max() > 160


def test_export_refusals_write_nothing(ssdlite_voc_run, tmp_path):
    out = tmp_path / 'x.onnx'
    frcnn = 'configs/faster_rcnn_ean_r50_voc.py'
    cases = [
        ([frcnn, str(ssdlite_voc_run['checkpoint']), '--out', str(out)], 'does not fit'),
        ([ssdlite_voc_run['config'], str(ssdlite_voc_run['checkpoint']), '--out', str(out),
          '--opset', '17'], 'opset 18 or newer'),
        ([ssdlite_voc_run['config'], str(tmp_path / 'none.pth'), '--out', str(out)],
         'checkpoint not found'),
        ([ssdlite_voc_run['config'], str(ssdlite_voc_run['checkpoint']), '--out',
          str(tmp_path / 'x.txt')], 'must be a .onnx file'),
    ]
    for argv, message in cases:
        with pytest.raises(InputError, match=message):
            export_tool.main(argv)
    assert not list(tmp_path.iterdir())


def test_unsupported_detectors_and_shapes_are_named():
    from mmengine.config import Config
    from mmengine.hub import get_config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    from ean_mm.deploy import check_input_shape, input_shape_of
    init_default_scope('mmdet')
    supported = (r'export supports SSD \(SSDLite320\), RetinaNet and RTMDet heads, and Faster '
                 r'R-CNN \(RPNHead \+ StandardRoIHead without masks\); this model has ')
    for config, what in (('configs/mask_rcnn_ean_r50_coco.py',
                          r'MaskRCNN: .*a mask head \(Mask R-CNN: masks are not exported\)'),
                         ('configs/cascade_rcnn_ean_r50_coco.py',
                          r'CascadeRCNN: .*a CascadeRoIHead \(Cascade R-CNN\)'),
                         ('mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
                          r'FCOS: .*head FCOSHead')):
        cfg = (get_config(config) if config.startswith('mmdet::') else
               Config.fromfile(str(ROOT / config)))
        cfg.model.backbone.init_cfg = None
        with pytest.raises(InputError, match=what) as err:
            end2end_detector(MODELS.build(cfg.model))
        assert re.search(supported, str(err.value)), err.value
    for config, shape in (('configs/retinanet_ean_r50_coco.py', (800, 1344)),
                          ('configs/rtmdet_s_ean_coco.py', (640, 640))):
        assert input_shape_of(Config.fromfile(str(ROOT / config))) == shape
    frcnn = Config.fromfile(str(ROOT / 'configs/faster_rcnn_ean_r50_coco.py'))
    assert input_shape_of(frcnn) == (800, 1344)
    ssd = Config.fromfile(str(ROOT / 'configs/ssdlite320_ean_mobilenext_coco.py'))
    assert input_shape_of(ssd) == (320, 320)
    with pytest.raises(InputError, match='multiples of 32.*160 160'):
        check_input_shape(frcnn, (150, 160))
