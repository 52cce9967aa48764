"""A checkpoint of another model, a truncated one and a partial one through tools/test.py and
tools/train.py (``--resume``, ``load_from``), in this process: one ``error:`` line naming the
file, what is missing and the fix, exit 1; ``--allow-partial-load`` accepts a partial one."""
import re
import sys
from pathlib import Path
from typing import List

import pytest
import torch
from conftest import ROOT, load_tool
from detection_runs import METRIC, small_run_options

from ean_mm.utils import exit_on_input_error

SSDLITE_VOC = str(ROOT / 'configs/ssdlite320_ean_mobilenext_voc.py')
FRCNN_VOC = str(ROOT / 'configs/faster_rcnn_ean_r50_voc.py')


def run(tool: str, argv: List[str], monkeypatch, capsys) -> tuple:
    """``(exit status, stdout, stderr)`` of ``tools/<tool>.py argv`` run in this process."""
    monkeypatch.setattr(sys, 'argv', [f'{tool}.py', *argv])
    code = 0
    try:
        exit_on_input_error(load_tool(f'tools/{tool}.py').main)
    except SystemExit as exc:
        code = exc.code
    finally:
        torch.set_flush_denormal(False)  # the tools' CPU setting; keep other tests unaffected
    out, err = capsys.readouterr()
    return code, out, err


def refused(tool: str, argv: List[str], monkeypatch, capsys) -> str:
    """The one ``error:`` line of a refused run (exit 1, no stack dump)."""
    code, _, err = run(tool, argv, monkeypatch, capsys)
    errors = [line for line in err.splitlines() if line.startswith('error:')]
    assert code == 1 and 'Traceback' not in err and len(errors) == 1, (code, err[-3000:])
    return errors[0]


@pytest.fixture
def voc(detection_data) -> Path:
    return detection_data['voc']


@pytest.fixture
def bad_files(ssdlite_voc_run, tmp_path) -> dict:
    """``truncated`` (first half of the shared SSDLite run's checkpoint) and ``partial`` (that
    checkpoint without its head's tensors)."""
    good = Path(ssdlite_voc_run['checkpoint'])
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    ckpt = torch.load(good, map_location='cpu', weights_only=False)
    ckpt['state_dict'] = {k: v for k, v in ckpt['state_dict'].items()
                          if not k.startswith('bbox_head.')}
    partial = tmp_path / 'partial.pth'
    torch.save(ckpt, partial)
    return dict(good=good, truncated=truncated, partial=partial)


def test_test_refuses_checkpoint_of_another_model(voc, bad_files, tmp_path, monkeypatch,
                                                  capsys):
    # the SSDLite run's checkpoint for Faster R-CNN: before, a random model evaluated, exit 0
    opts = small_run_options(FRCNN_VOC, voc)
    line = refused('test', [FRCNN_VOC, str(bad_files['good']), '--work-dir', str(tmp_path),
                            '--cfg-options', *opts], monkeypatch, capsys)
    assert re.search(rf"{re.escape(str(bad_files['good']))} does not fit the model of "
                     rf'.*faster_rcnn_ean_r50_voc.py: it leaves \d+ of the model\'s \d+ '
                     r'tensors unloaded \(missing backbone\.conv1\.weight, ', line), line
    assert line.endswith('to load it anyway, leaving those at their initial values: '
                         '--allow-partial-load.'), line


def test_test_refuses_truncated_and_partial_checkpoints(voc, bad_files, tmp_path, monkeypatch,
                                                        capsys):
    opts = small_run_options(SSDLITE_VOC, voc)
    common = ['--work-dir', str(tmp_path / 'work'), '--cfg-options', *opts]
    line = refused('test', [SSDLITE_VOC, str(bad_files['truncated']), *common], monkeypatch,
                   capsys)
    assert line.startswith(f"error: {bad_files['truncated']}: cannot be read as a torch "
                           'checkpoint (') and 'truncated or corrupt' in line, line
    assert 'Copy or save it again, or give another file.' in line

    line = refused('test', [SSDLITE_VOC, str(bad_files['partial']), *common], monkeypatch,
                   capsys)
    assert re.search(r"it leaves (\d+) of the model's \d+ tensors unloaded \(missing "
                     r'bbox_head\.cls_convs\.0\.0\.conv\.weight, ', line), line
    assert '--allow-partial-load' in line

    # the override: the partial checkpoint tested (its head at the initial values)
    code, out, err = run('test', [SSDLITE_VOC, str(bad_files['partial']), *common,
                                  '--allow-partial-load'], monkeypatch, capsys)
    assert code == 0 and re.search(METRIC['voc'], out + err), (out + err)[-3000:]


def test_train_resume_and_load_from_refuse_wrong_checkpoints(voc, bad_files, tmp_path,
                                                             monkeypatch, capsys):
    opts = small_run_options(FRCNN_VOC, voc, validate=False)
    work = ['--work-dir', str(tmp_path / 'work')]
    line = refused('train', [FRCNN_VOC, *work, '--resume', str(bad_files['good']),
                             '--cfg-options', *opts], monkeypatch, capsys)
    assert 'does not fit the model of' in line and 'missing backbone.conv1.weight' in line
    assert '--allow-partial-load' in line

    ssd_opts = small_run_options(SSDLITE_VOC, voc, validate=False)
    line = refused('train', [SSDLITE_VOC, *work, '--resume', str(bad_files['truncated']),
                             '--cfg-options', *ssd_opts], monkeypatch, capsys)
    assert f"{bad_files['truncated']}: cannot be read as a torch checkpoint" in line

    line = refused('train', [SSDLITE_VOC, *work, '--cfg-options', *ssd_opts,
                             f"load_from={bad_files['partial']}"], monkeypatch, capsys)
    assert f"{bad_files['partial']} does not fit" in line and 'missing bbox_head.' in line
    assert not (tmp_path / 'work' / 'iter_1.pth').exists()


def test_init_model_refuses_partial_checkpoints(bad_files):
    # tools/analysis/gradcam.py and the export tool load through init_model
    from ean_mm.apis import init_model
    from ean_mm.utils import InputError
    with pytest.raises(InputError, match=r'does not fit .* \(missing bbox_head\.'):
        init_model(SSDLITE_VOC, str(bad_files['partial']))


def test_onnx_infer_refuses_a_file_of_other_classes(tmp_path, monkeypatch):
    # an ONNX file of a VOC detector with a COCO config: before, COCO names on VOC labels, exit 0
    pytest.importorskip('onnxruntime')
    from detection_runs import fake_onnx_export
    from PIL import Image

    from ean_mm.deploy import OnnxDetector, export_onnx
    from ean_mm.utils import InputError
    fake_onnx_export(monkeypatch)
    detector = torch.nn.Identity()
    detector.classes = ('aeroplane', 'bicycle', 'bird')
    onnx_file, image = tmp_path / 'voc.onnx', tmp_path / 'a.jpg'
    export_onnx(detector, str(onnx_file), (4, 4))
    assert OnnxDetector(str(onnx_file)).classes == detector.classes
    Image.new('RGB', (8, 8)).save(image)
    infer = load_tool('tools/deployment/onnx_infer.py')
    with pytest.raises(InputError, match=r'voc\.onnx was exported for 3 classes \(aeroplane, '
                       r'bicycle, bird\); the test data set of .*ssdlite320_ean_mobilenext_'
                       r'coco\.py has 80 \(person, .*\)\. Give the config it was exported from'):
        infer.main([str(onnx_file), str(ROOT / 'configs/ssdlite320_ean_mobilenext_coco.py'),
                    str(image)])


def test_pretrained_init_refuses_a_checkpoint_of_another_network(tmp_path):
    # a ResNet-50 file as MobileNeXt's ImageNet init: before, a warning and a random backbone
    # (an EAN backbone refuses it already: no plain start fits)
    import torchvision
    from mmdet.registry import MODELS

    from ean_mm.utils import InputError
    path = tmp_path / 'resnet50.pth'
    torch.save(torchvision.models.resnet50().state_dict(), path)
    net = MODELS.build(dict(type='ean_mm.MobileNeXt',
                            init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    with pytest.raises(InputError, match=r'resnet50\.pth holds none of the \d+ tensors of '
                       r'MobileNeXt .*\(its keys: conv1\.weight, .* wrong init_cfg prefix'):
        net.init_weights()
