"""mmdet's own tools on our configs, run in this process: ``tools/analysis_tools/get_flops.py``
(shipped in mmdet's package under ``mmdet/.mim/tools``) counts an EAN detector as its plain
twin plus what its EAN layers add; the analysis tools' imports are installed."""
import argparse
import importlib.util
from pathlib import Path
from typing import Dict, List, Tuple

import mmdet
import pytest
import torch
from conftest import ROOT
from detection_runs import small_run_options
from mmengine.config import DictAction

MIM_TOOLS = Path(mmdet.__file__).parent / '.mim' / 'tools'

#: (EAN config, plain twin): the ResNet-based and the MobileNeXt-based detectors.
PAIRS = [('configs/faster_rcnn_ean_r50_coco.py', 'configs/faster_rcnn_r50_coco.py'),
         ('configs/ssdlite320_ean_mobilenext_coco.py', 'configs/ssdlite320_mobilenext_coco.py')]


def stock_tool(name: str):
    """mmdet's ``tools/analysis_tools/<name>.py`` as a module (its ``main`` does not run)."""
    path = MIM_TOOLS / 'analysis_tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'mmdet_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def val_options(config: str, data_root: Path) -> Dict:
    """``--cfg-options`` for get_flops: the val loader on the generated COCO data at 160 px, no
    workers; Faster R-CNN keeps 100 proposals whatever its random weights score (NMS IoU 1.0),
    so that the RoI head costs the same in both twins."""
    words = [w for w in small_run_options(config, data_root)
             if w.startswith(('val_dataloader', 'model.backbone.init_cfg'))]
    if 'faster_rcnn' in config:
        words += ['model.test_cfg.rpn.nms.iou_threshold=1.0', 'model.test_cfg.rpn.max_per_img=100']
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *words]).cfg_options


def get_flops(tool, config: str, data_root: Path, monkeypatch) -> Tuple[int, int, str]:
    """``(FLOPs, what EAN adds, the tool's printed FLOPs)`` of one generated val image through
    get_flops.py's ``inference`` (``--num-images 1``). What EAN adds: mmengine's rule for the
    norm that EAN's Eqn 5 is (5 FLOPs per element with the affine step), summed over the EAN
    layers' inputs in the same forward."""
    from mmengine.logging import MMLogger

    from ean_mm.models import EAN
    calls: List[Tuple] = []
    real = tool.get_model_complexity_info

    def spy(model, *args, inputs=None, **kwargs):
        outputs = real(model, *args, inputs=inputs, **kwargs)
        calls.append((model, inputs, outputs['flops']))
        return outputs

    monkeypatch.setattr(tool, 'get_model_complexity_info', spy)
    args = argparse.Namespace(config=str(ROOT / config), num_images=1,
                              cfg_options=val_options(config, data_root))
    result = tool.inference(args, MMLogger.get_instance('mmdet_get_flops'))
    (model, inputs, flops), = calls
    seen: List[int] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(i[0].numel()))
             for m in model.modules() if isinstance(m, EAN)]
    with torch.no_grad():
        model.forward(inputs)  # the tool's forward: data samples bound, mode 'tensor'
    for hook in hooks:
        hook.remove()
    return flops, 5 * sum(seen), result['flops']


@pytest.mark.parametrize('ean, plain', PAIRS, ids=['faster_rcnn_r50', 'ssdlite_mobilenext'])
def test_get_flops_counts_ean_on_top_of_the_plain_twin(ean, plain, detection_data,
                                                       monkeypatch):
    tool = stock_tool('get_flops')
    ean_flops, ean_adds, printed = get_flops(tool, ean, detection_data['coco'], monkeypatch)
    plain_flops, plain_adds, _ = get_flops(tool, plain, detection_data['coco'], monkeypatch)
    print(f'{ean}: {ean_flops} ({printed}); {plain}: {plain_flops}; EAN adds {ean_adds}')
    assert plain_adds == 0 and ean_adds > 0
    assert ean_flops >= plain_flops  # was: EAN counted cheaper than plain
    assert ean_flops - plain_flops == ean_adds


@pytest.mark.parametrize('tool, module', [('benchmark', 'psutil'), ('analyze_logs', 'seaborn')])
def test_mmdet_analysis_tools_import(tool, module):
    # tools/setup_env.sh installs what mmdet's analysis tools import (extra [analysis])
    assert hasattr(stock_tool(tool), 'main')
    pytest.importorskip(module)


@pytest.mark.parametrize('backbone', [dict(type='ean_mm.EANResNet', depth=18, ean_groups=32),
                                      dict(type='ean_mm.EANMobileNeXt')])
def test_hooks_see_the_norm_and_ean_in_training(backbone):
    # hook-based counters and feature probes (forward hooks on the norm before an EAN, or on
    # the EAN): before, the joint BatchNorm+EAN step ran neither module's hooks
    from mmdet.registry import MODELS

    from ean_mm.checkpoint import ean_norm_pairs
    net = MODELS.build(backbone).train()
    modules = dict(net.named_modules())
    pairs = ean_norm_pairs(net)
    called: List[str] = []
    for path in [*pairs, *pairs.values()]:
        modules[path].register_forward_hook(lambda m, i, o, path=path: called.append(path))
    net(torch.randn(2, 3, 64, 64))  # grad enabled, train mode: where the joint step runs
    assert sorted(called) == sorted([*pairs, *pairs.values()])
