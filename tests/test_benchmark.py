"""tools/analysis/benchmark.py and ean_mm.benchmark: end to end on tiny settings, model
resolution, Params / FLOPs counting, report rendering. No timing assertions."""
import json
import os.path as osp

import pytest
import torch
from conftest import ROOT, load_tool

from ean_mm.benchmark import (DEFAULT_MODELS, TABLE_COLUMNS, Bench, Options, build_model,
                              count_flops, count_params, markdown, preset_spec, resolve,
                              target_lines)
from ean_mm.benchmark.report import runtime_lines, runtime_target

bm = load_tool('tools/analysis/benchmark.py')
R50_PARAMS = 25_557_032
R50_FLOPS = 4_111_512_576  # mmengine's count at 224x224 (1 multiply-add = 1 FLOP): "4.11G"


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('bench')
    try:
        rows = bm.main(['--models', 'ean-r18', '--img-size', '32', '--batch-size', '2',
                        '--rounds', '2', '--warmup', '1', '--mem-steps', '1',
                        '--onnxruntime', '--openvino', '--export-forms', 'layernorm',
                        'moments', '--profile', '1', '--out-dir', str(out)])
    finally:
        torch.set_flush_denormal(False)  # the tool's CPU setting; keep other tests unaffected
    return out, rows


def test_end_to_end_writes_table_png_json(tiny_run):
    out, rows = tiny_run
    assert [r['name'] for r in rows] == ['r18', 'ean-r18']  # the plain twin is added, first
    md = (out / 'auto.md').read_text()
    header = '| ' + ' | '.join(TABLE_COLUMNS) + ' |'
    assert header in md
    main, deployed = md.split('## Exported inference: onnxruntime and OpenVINO')
    deployed, profiles = deployed.split('## Profile (torch.profiler')
    # PyTorch: one row a model; exported: plain once a runtime, EAN once a runtime and form
    for section, columns, count in ((main, len(TABLE_COLUMNS), 2), (deployed, 8, 6)):
        table = [line for line in section.splitlines() if line.startswith('| ResNet-18 |')
                 or line.startswith('| EAN-ResNet-18 |')]
        assert len(table) == count
        assert all(line.count('|') == columns + 1 for line in table)
    for runtime in ('onnxruntime', 'OpenVINO'):
        assert f'| EAN-ResNet-18 | 2 | {runtime} | default |' in deployed
        assert f'| EAN-ResNet-18 | 2 | {runtime} | moments |' in deployed
    for needle in ('- date: ', '- cpu: ', '- torch threads: ', 'torch ' + torch.__version__,
                   '- allocator: ', 'Minor page faults per inference batch',
                   '- command: `python tools/analysis/benchmark.py --models ean-r18',
                   'Table 3', '## Targets', 'EAN-ResNet-18: inference latency'):
        assert needle in md, needle
    png = (out / 'auto.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 5000
    data = json.loads((out / 'auto.json').read_text())
    ean = {r['name']: r for r in data['rows']}['ean-r18']
    assert ean['twin'] == 'r18' and ean['ean_layers'] == 8
    assert len(ean['infer_s']) == len(ean['train_s']) == 2
    # a batch's page-fault count (median of 2 rounds: a whole or half number) is in the report
    assert ean['infer_faults'] >= 0 and (2 * ean['infer_faults']).is_integer()
    assert f"EAN-ResNet-18 {ean['infer_faults']:,.0f}" in md
    assert sorted(ean['runtimes']) == ['onnxruntime', 'onnxruntime:moments', 'openvino',
                                       'openvino:moments']
    plain = {r['name']: r for r in data['rows']}['r18']
    assert sorted(plain['runtimes']) == ['onnxruntime', 'openvino']
    for key, entry in ean['runtimes'].items():
        assert len(ean['runtime_s'][key]) == 2 and entry['ms'] > 0 and entry['ratio'] > 0, key
    assert 'ratio' not in plain['runtimes']['openvino']  # the twin is the reference
    # torch.profiler: EAN's kernel time lands in the EAN category, none in the plain twin's
    assert ean['profile']['infer']['EAN'] > 0 and plain['profile']['infer']['EAN'] == 0
    # the runtimes' own profiles: one node per EAN layer of the form's norm, in each file
    ops = {key: {op: nodes for op, (_, nodes) in p.items()}
           for key, p in ean['runtime_profile'].items()}
    assert sorted(ops) == sorted(ean['runtimes'])
    assert ops['onnxruntime']['LayerNormalization'] == ops['onnxruntime']['Sigmoid'] == 8
    assert ops['openvino']['MVN'] == 8  # OpenVINO's name for the normalisation
    assert ops['onnxruntime:moments']['ReduceMean'] == 16  # mean of x and of x * x
    assert 'LayerNormalization' not in ops['onnxruntime:moments']
    assert not {'LayerNormalization', 'Sigmoid'} & set(plain['runtime_profile']['onnxruntime'])
    assert '| EAN-ResNet-18 | onnxruntime | LayerNormalization | 8 |' in profiles
    assert '| EAN-ResNet-18 | OpenVINO (moments) | ' in profiles
    assert data['info']['openvino'] and data['info']['onnxruntime']
    for key in ('infer_ratio', 'train_ratio', 'mem_ratio', 'img_s', 'flops', 'peak_mb'):
        assert ean[key] is not None and ean[key] > 0, key
    # EAN adds 4 vectors of C/64 per block: 2 blocks per stage, C = 64, 128, 256, 512.
    assert ean['params'] == {r['name']: r for r in data['rows']}['r18']['params'] + 2 * 4 * 15


def test_memory_probe_in_fresh_process(tiny_run):
    _, rows = tiny_run
    for row in rows:
        # the step's own memory (activations, gradients) was measured, on top of the state
        assert row['state_mb'] > 0 and row['peak_mb'] - row['state_mb'] > 1
    # ResNet-18 training state (parameters + SGD momentum, float32) is ~89 MB.
    assert 80 < rows[0]['state_mb'] < 100


def test_resnet50_params_and_flops():
    cpu = torch.device('cpu')
    model = build_model(preset_spec('r50'))
    assert count_params(model) == R50_PARAMS
    flops, note = count_flops(model, preset_spec('r50'), 224, cpu)
    assert flops == R50_FLOPS and note == ''
    # EAN-ResNet-50: same parameters + 16 x 4 x (C/64); EAN's kernel op counts as the reference
    # path's GroupNorm (5 FLOPs per element of the 16 conv3 outputs).
    extra = 5 * (3 * 256 * 56**2 + 4 * 512 * 28**2 + 6 * 1024 * 14**2 + 3 * 2048 * 7**2)
    for impl in ('auto', 'reference'):
        ean = build_model(preset_spec('ean-r50'), impl)
        assert count_params(ean) == R50_PARAMS + 944
        assert count_flops(ean, preset_spec('ean-r50'), 224, cpu)[0] == R50_FLOPS + extra


def test_resolve_adds_twins_groups_families():
    names = [s.name for s in resolve(['ean-mx', 'se-r50', 'mx', 'ca-r50'])]
    assert names == ['mx', 'ean-mx', 'r50', 'se-r50', 'ca-r50']
    assert [s.name for s in resolve(DEFAULT_MODELS)] == DEFAULT_MODELS
    config = osp.join('configs', 'ssdlite320_ean_mobilenext_voc.py')
    specs = resolve([config])
    assert [osp.basename(s.name) for s in specs] == ['ssdlite320_mobilenext_voc.py',
                                                    'ssdlite320_ean_mobilenext_voc.py']
    assert specs[1].attention == 'EAN' and specs[1].kind == 'detector'
    with pytest.raises(SystemExit):
        resolve(['no-such-model'])


def test_build_model_sets_every_ean_layer():
    from ean_mm.models import EAN
    model = build_model(preset_spec('ean-r18'), 'reference')
    layers = [m for m in model.modules() if isinstance(m, EAN)]
    assert len(layers) == 8
    assert all(m.implementation == 'reference' for m in layers)


def test_detector_bench_runs():
    spec = resolve([osp.join(ROOT, 'configs', 'ssdlite320_ean_mobilenext_voc.py')])[1]
    model = build_model(spec)
    bench = Bench(spec, model, 2, 64, torch.device('cpu'))  # BN needs 2 values per channel
    bench.infer()
    bench.train_step()
    flops, _ = count_flops(model, spec, 64, torch.device('cpu'))
    # float32 parameters and SGD momentum (created by the step): at least 8 bytes a parameter
    assert flops > 0 and bench.state_bytes() >= 8 * count_params(model)


def _row(name, label, family, attention, twin, **ratios):
    row = dict(name=name, label=label, family=family, attention=attention, twin=twin, batch=8,
               params=1, flops=1, flops_note='', img_s=1.0, infer_ms=1.0, train_ms=1.0,
               peak_mb=1.0, ean_layers=16 if attention == 'EAN' else 0)
    row.update(ratios)
    return row


def test_report_targets():
    rows = [_row('r50', 'ResNet-50', 'ResNet-50', 'plain', None),
            _row('se-r50', 'SE-ResNet-50', 'ResNet-50', 'SE', 'r50', infer_ratio=1.2,
                 train_ratio=1.1, mem_ratio=1.05),
            _row('ean-r50', 'EAN-ResNet-50', 'ResNet-50', 'EAN', 'r50', infer_ratio=1.05,
                 train_ratio=1.2, mem_ratio=1.02)]
    lines = target_lines(rows)
    assert len(lines) == 1
    assert 'inference latency 1.050x (target <= 1.05x: met)' in lines[0]
    assert 'training step 1.200x (target <= 1.08x: NOT met)' in lines[0]
    assert 'inference latency vs SE 1.200x: cheaper' in lines[0]
    assert 'training step vs SE 1.100x: NOT cheaper' in lines[0]
    md = markdown(rows, Options(name='x'), {'date': 'd', 'device': 'cpu'}, 'python tools/x')
    assert md.startswith('# EAN speed / memory benchmark (EAN `auto`, 224x224, cpu)')
    assert '- command: `python tools/x`' in md and lines[0] in md
    assert md.count('| EAN-ResNet-50 | 8 |') == 1


def test_cli_help_defaults_and_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        bm.parse_args(['--help'])
    printed = capsys.readouterr().out
    assert exc.value.code == 0
    for option in ('--models', '--batch-size', '--img-size', '--rounds', '--warmup', '--device',
                   '--threads', '--ean-impl', '--out-dir'):
        assert option in printed
    args = bm.parse_args([])  # the paper's Table 3 set at 224x224, EAN's default kernels
    assert args.models == ['r50', 'se-r50', 'ca-r50', 'ean-r50', 'mx', 'se-mx', 'ca-mx',
                           'ean-mx']
    assert (args.img_size, args.ean_impl, args.name) == (224, 'auto', 'auto')
    assert Options(**vars(args)).models == DEFAULT_MODELS  # the flags are Options' fields
    assert args.settings == [dict(label='cpu', device='cpu', threads=None, amp=False)]
    settings = bm.parse_args(['--settings', 'cpu:1t', 'cpu:2t:bf16']).settings
    assert [(s['threads'], s['amp']) for s in settings] == [(1, False), (2, True)]
    with pytest.raises(SystemExit) as exc:
        bm.parse_args(['--settings', 'gpu'])
    assert exc.value.code == 2 and "'gpu' is not cpu:<N>t" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        bm.parse_args(['--rounds', '0'])
    assert exc.value.code == 2 and '--rounds must be >= 1' in capsys.readouterr().err



def test_runtime_targets_by_family():
    assert [runtime_target(f) for f in ('ResNet-50', 'MobileNeXt', 'ssdlite320_mobilenext_coco',
                                        'faster_rcnn_r50_coco', 'ResNet-18')] == \
        [1.15, 1.25, 1.10, 1.10, None]
    rows = [_row('r50', 'ResNet-50', 'ResNet-50', 'plain', None,
                 runtimes={'openvino': dict(ms=100.0)}),
            _row('ean-r50', 'EAN-ResNet-50', 'ResNet-50', 'EAN', 'r50',
                 runtimes={'openvino': dict(ms=120.0, ratio=1.2, range=(1.1, 1.3)),
                           'openvino:moments': dict(ms=110.0, ratio=1.1, range=(1.0, 1.2))})]
    lines = runtime_lines(rows)
    assert '| EAN-ResNet-50 | 8 | OpenVINO | moments | 110.0 | **1.100** (1.00-1.20) |' in \
        '\n'.join(lines)
    # only the default form is held against the target
    assert [line for line in lines if line.startswith('- ')] == [
        '- EAN-ResNet-50, OpenVINO: 1.200x (target <= 1.15x: NOT met)']


def test_runtime_flags_are_checked(capsys):
    args = bm.parse_args(['--openvino', '--onnxruntime', '--settings', 'cpu:1t', 'cpu:2t',
                          '--export-forms', 'grouped', '--no-train'])
    assert Options(**vars(args)).export_forms == ['grouped'] and args.no_train
    for argv, message in ((['--export-forms', 'moments'], '--export-forms needs'),
                          (['--openvino', '--settings', 'cpu:2t:bf16'], 'in float32'),
                          (['--openvino', '--export-forms', 'nope'], "invalid choice: 'nope'")):
        with pytest.raises(SystemExit) as exc:
            bm.parse_args(argv)
        assert exc.value.code == 2 and message in capsys.readouterr().err, argv


@pytest.mark.parametrize('argv,message', [
    (['--compile'], 'unrecognized arguments: --compile'),
    (['--keep-compile-cache'], 'unrecognized arguments: --keep-compile-cache'),
    (['--ean-impl', 'fused'], "invalid choice: 'fused'")])
def test_removed_fused_path_and_compile_flag_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bm.parse_args(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err
