"""Shared fixtures and helpers: the repository root, tools loaded by path or run as a user would,
public weights made here (same keys and shapes, random values)."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, Optional

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# Without a GPU, Triton kernels run in its interpreter on CPU tensors (read when a kernel is
# defined, so before ean_mm's Triton module is imported).
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def load_tool(path: str) -> ModuleType:
    """The program ``tools/...`` as a module (its ``__main__`` block does not run)."""
    name = 'tool_' + Path(path).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)
    return sys.modules[name]


def run_tool(*args: str, env: Optional[Dict[str, str]] = None, check: bool = True,
             timeout: int = 600) -> subprocess.CompletedProcess:
    """``python <args>`` from the repository root; with ``check``, a failure shows the output."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} exited {proc.returncode}\n{proc.stdout[-4000:]}\n'
                             f'{proc.stderr[-4000:]}')
    return proc


#: The file ``torchvision://resnet50`` names (mmengine's table), in torch's cache. Source:
#: mmengine 0.10.7 (installed) ``mmengine/hub/torchvision_0.12.json`` (``"resnet50"``), which its
#: ``runner/checkpoint.py`` ``get_torchvision_models`` reads for torchvision >= 0.13; the same URL
#: is ``ResNet50_Weights.IMAGENET1K_V1`` in torchvision 0.28.0
#: (git 8fb87713a24951e639c494b0f2a8a81b5f8e33a6) ``torchvision/models/resnet.py``.
TORCHVISION_R50 = 'resnet50-0676ba61.pth'


@torch.no_grad()
def randomised(state: Dict[str, torch.Tensor], seed: int = 0) -> Dict[str, torch.Tensor]:
    """``state`` with random values a trained network could hold (positive variances)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in state.items():
        if key.endswith('num_batches_tracked'):
            out[key] = value.clone()
        elif key.endswith('running_var'):
            out[key] = torch.rand(value.shape, generator=g) + 0.5
        elif key.endswith(('running_mean', 'bias')):
            out[key] = torch.randn(value.shape, generator=g) * 0.1
        elif value.dim() == 1:  # norm weights
            out[key] = torch.rand(value.shape, generator=g) + 0.5
        else:
            out[key] = torch.randn(value.shape, generator=g) / value[0].numel() ** 0.5
    return out


@pytest.fixture(scope='session')
def public_weights(tmp_path_factory) -> Dict[str, Path]:
    """``torch_home``: a TORCH_HOME whose cache holds torchvision's ResNet-50 (what
    ``torchvision://resnet50`` loads); ``torchvision_r50``: that file; ``mobilenext``: the
    MobileNeXt authors' checkpoint converted by tools/model_converters/mobilenext_official.py.

    The ResNet-50 file is ``torchvision.models.resnet50().state_dict()`` of the installed class
    (structure: pytorch/vision ``torchvision/models/resnet.py`` @
    f50e776b051ddf007b90d7bc8f70b0708c12d008), a bare state dict as torchvision publishes it
    (``_resnet`` loads the downloaded object with ``model.load_state_dict``). Not verified:
    whether the published resnet50-0676ba61.pth holds the 53 ``num_batches_tracked`` buffers
    that this file has."""
    import torchvision
    from reference_mobilenext import official_state_dict
    home = tmp_path_factory.mktemp('torch_home')
    r50 = home / 'hub' / 'checkpoints' / TORCHVISION_R50
    r50.parent.mkdir(parents=True)
    torch.save(randomised(torchvision.models.resnet50().state_dict()), r50)
    authors = home / 'mobilenext_authors.pth'
    torch.save(official_state_dict(), authors)
    mobilenext = home / 'mobilenext_in1k.pth'
    assert load_tool('tools/model_converters/mobilenext_official.py').main(
        [str(authors), str(mobilenext)]) == 0
    return dict(torch_home=home, torchvision_r50=r50, mobilenext=mobilenext)


@pytest.fixture(scope='session')
def detection_data(tmp_path_factory) -> Dict[str, Path]:
    """Generated COCO and VOC data (``coco``, ``voc``: their roots)."""
    from detection_runs import make_detection_data
    return make_detection_data(tmp_path_factory.mktemp('det_data'))


def _trained(config: str, fmt: str, validate: bool):
    @pytest.fixture(scope='session')
    def run(detection_data, public_weights, tmp_path_factory):
        from detection_runs import train_from_public_weights
        work = tmp_path_factory.mktemp(Path(config).stem)
        log = train_from_public_weights(config, detection_data[fmt], work, public_weights,
                                        validate=validate)
        return dict(config=config, work=work, checkpoint=work / 'iter_1.pth', log=log)
    return run


#: tools/train.py runs of one iteration from public weights, shared by the tests that need a
#: trained detector: ``config``, ``work`` (folder), ``checkpoint`` (iter_1.pth) and ``log``.
ssdlite_voc_run = _trained('configs/ssdlite320_ean_mobilenext_voc.py', 'voc', validate=False)
faster_rcnn_coco_run = _trained('configs/faster_rcnn_ean_r50_coco.py', 'coco', validate=True)


@pytest.fixture(scope='session')
def stock_runs(detection_data, public_weights, tmp_path_factory):
    """``stock_runs(config)``: tools/train.py of one of the stock-recipe configs (RetinaNet,
    Mask R-CNN, Cascade R-CNN, RTMDet-s) for one iteration on the generated COCO data, from the
    public weights it names; each config run once per session, when first asked for
    (:func:`detection_runs.train_one_iteration`)."""
    from detection_runs import stock_torch_home, train_one_iteration
    home = stock_torch_home(tmp_path_factory.mktemp('stock_torch_home'),
                            public_weights['torchvision_r50'])
    runs = {}

    def run(config: str) -> dict:
        if config not in runs:
            work = tmp_path_factory.mktemp(Path(config).stem)
            # no validation in the run: the tests evaluate its checkpoint with tools/test.py
            runs[config] = train_one_iteration(config, detection_data['coco'], work, home,
                                               validate=False)
        return runs[config]
    return run
