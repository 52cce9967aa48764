"""model-index.yml / configs/metafile.yml read back as openmim 0.3.9 reads them (`mim search`
loads the file with modelindex's ``load`` and tabulates it with ``convert2df``), and checked
against the configs: one model per config, the paper's figures as ean_mm/paper.py has them,
Parameters as the configs build, no weights."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from ean_mm.paper import CLASSIFIERS, DETECTORS

CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / 'configs').rglob('*.py')
                 if '_base_' not in p.parts)

#: configs/pretrain/<name>.py -> ean_mm.paper.CLASSIFIERS preset with its Table 3 row.
PRETRAIN_PRESETS = {'r50_in1k': 'r50', 'se_r50_in1k': 'se-r50', 'ca_r50_in1k': 'ca-r50',
                    'ean_r50_in1k': 'ean-r50', 'mobilenext_in1k': 'mx',
                    'se_mobilenext_in1k': 'se-mx', 'ca_mobilenext_in1k': 'ca-mx',
                    'ean_mobilenext_in1k': 'ean-mx', 'ean_mobilenetv2_in1k': 'ean-mv2'}


@pytest.fixture(scope='module')
def index():
    from modelindex.load_model_index import load
    return load(str(ROOT / 'model-index.yml'))


@pytest.fixture(scope='module')
def models(index):
    """Name -> the modelindex Model (collections applied, as `mim search` sees them)."""
    return {m.name: m for m in index.models}


def metrics(model) -> dict:
    out = {}
    for result in model.results or []:
        for key, value in (result.metrics or {}).items():
            out[(result.dataset, key)] = value
    return out


def test_loads_without_errors_and_lists_every_config(index, models):
    # README paths are relative to the repository root, as mmdet's metafiles write them (and
    # `mim search` shows them); modelindex's own check resolves them against the metafile's
    # folder, so its README complaint is checked here against the root instead.
    errors = [e for item in index.collect_check_errors() for e in item['errors']
              if not e.startswith('Path to README file')]
    assert not errors, errors
    assert sorted(m.config for m in models.values()) == CONFIGS
    for name, m in models.items():
        assert name == Path(m.config).stem
        assert m.in_collection in {c.name for c in index.collections}
        assert m.weights is None  # nothing released yet
        assert isinstance(m.metadata.parameters, int)
        assert m.metadata.training_data and m.metadata.data['Architecture']
        if 'shapes' not in name:  # the demo detector's FLOPs were not measured
            assert isinstance(m.metadata.flops, int) and m.metadata.data['FLOPs input']
        # Every figure says where it comes from.
        assert m.results and all(k.endswith(('(paper)', '(measured)')) for _, k in metrics(m))
    for c in index.collections:
        assert c.paper['URL'].startswith('https://') and 'EAN' in c.paper['Title']
        assert (ROOT / c.code['URL']).is_file() and (ROOT / c.readme).is_file()


def test_results_are_the_papers(models):
    for name, row in DETECTORS.items():
        got = metrics(models[name])
        if row is None:
            assert got == {}, name
        elif row.table == 'Table 5':
            assert got == {('COCO', 'box AP (paper)'): row.map,
                           ('COCO', 'box AP@0.5 (paper)'): row.ap50,
                           ('COCO', 'box AP@0.75 (paper)'): row.ap75}, name
        else:
            assert got == {('PASCAL VOC', 'box AP (paper)'): row.map}, name
        if row is not None:
            assert models[name].metadata.data['Paper Parameters'] == f'{row.params_m}M'
    for name, preset in PRETRAIN_PRESETS.items():
        paper = CLASSIFIERS[preset].paper
        assert metrics(models[name]) == {('ImageNet-1k', 'Top 1 Accuracy (paper)'): paper.top1}
        assert models[name].metadata.data['Paper FLOPs'] == paper.flops
        assert models[name].metadata.data['Paper Parameters'] == f'{paper.params_m:.2f}M'
    fine_tunes = [n for n in models if n.endswith(('_from_torchvision', '_from_authors'))]
    assert len(fine_tunes) == 2 and all(metrics(models[n]) == {} for n in fine_tunes)


def test_parameters_are_those_the_configs_build(models):
    for config in CONFIGS:
        cfg = Config.fromfile(str(ROOT / config))
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        model = MODELS.build(cfg.model)
        count = sum(p.numel() for p in model.parameters())
        assert models[Path(config).stem].metadata.parameters == count, config


def test_flops_as_mmengine_counts_them(models):
    # The plain MobileNeXt classifier (no EAN op to special-case), as the benchmark counts it.
    from mmengine.analysis import FlopAnalyzer
    cfg = Config.fromfile(str(ROOT / 'configs/pretrain/mobilenext_in1k.py'))
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model).eval()

    class Tensor(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x, mode='tensor')

    meta = models['mobilenext_in1k'].metadata
    assert meta.data['FLOPs input'] == '1x3x224x224'
    with torch.no_grad():
        analyzer = FlopAnalyzer(Tensor(), (torch.randn(1, 3, 224, 224), ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        assert int(analyzer.total()) == meta.flops


def test_mim_search_reads_the_models(tmp_path):
    # As a user runs it from the repository root (docs/model_zoo.md).
    out = tmp_path / 'models.json'
    proc = subprocess.run([sys.executable, '-m', 'mim', 'search', 'ean_mm', '--json', str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    table = json.loads(out.read_text())  # {field: {model: value}}
    assert sorted(table['config'].values()) == CONFIGS
    assert table['parameters']['faster_rcnn_ean_r50_coco'] == 41754000
    assert table['coco/box_ap_(paper)']['faster_rcnn_ean_r50_coco'] == 38.4
    assert table['pascal voc/box_ap_(paper)']['ssdlite320_ean_mobilenext_voc'] == 73.4
    assert table['imagenet-1k/top_1_accuracy_(paper)']['ean_mobilenext_in1k'] == 74.21
    assert table['model']['ssdlite320_ean_mobilenext_coco'] == 'ssdlite320 ean'
    assert 'weight' not in table
