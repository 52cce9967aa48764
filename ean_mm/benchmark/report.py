"""Rows of results and their reports: variant / plain-twin ratios (the median over rounds of
the same-round ratio), the markdown tables, the targets and the method."""
import statistics
from typing import Dict, List, Optional, Tuple

import torch

from ..paper import CLASSIFIERS
from .options import Options
from .profiling import PROFILE_CATEGORIES
from .result import Result
from .runtime import machine_info

__all__ = ['METHOD', 'TABLE_COLUMNS', 'TARGETS', 'summarize', 'markdown', 'target_lines',
           'runtime_lines', 'runtime_target', 'RUNTIME_TARGETS',
           'profile_lines', 'summary_markdown']

METHOD = """\
* Params: all parameters. FLOPs: mmengine `FlopAnalyzer`, one image, one multiply-add = 1 FLOP,
  elementwise ops (sigmoid, products, adds) not counted; EAN traces as its `instance` export
  form, whose instance norm is counted like the GroupNorm of its reference path (5
  FLOPs/element, mmengine's norm rule), whatever its form for ONNX files.
* Before any timing, every BatchNorm's running statistics are those of one training-mode
  forward pass of the model's batch (random weights with the initial statistics give
  activations that grow layer after layer, another regime than a trained network's).
* Inference: eval mode, `torch.no_grad()`, batch B of random images; images/s = B / median
  batch time.
* Training step: train mode, forward + loss (cross-entropy for classifiers, the detector's own
  losses for detectors) + backward + SGD step (momentum 0.9, weight decay 1e-4).
* Runs are interleaved: each round times every model of a family once, in order (the plain twin
  first); a ratio is the median over rounds of variant time / plain-twin time *in the same
  round*, so slow phases of a shared machine hit both sides of a ratio. Times are medians over
  rounds. Warm-up iterations are excluded.
* Peak training memory: a fresh process per model. CUDA: `torch.cuda.max_memory_allocated`
  over the measured training steps. CPU: the resident set's high-water mark (`VmHWM`, reset via
  `/proc/self/clear_refs`) during the measured steps minus the resident set just before them,
  plus the bytes of the persistent training state (parameters, buffers, optimizer state), with
  glibc returning every allocation >= 64 KiB to the system when freed
  (`MALLOC_MMAP_THRESHOLD_=65536`) so that the resident set follows live tensor memory rather
  than the allocator's cache. Warm-up steps run before the measured ones.
* CPU runs flush denormals to zero (`torch.set_flush_denormal(True)`), as the training tools do.
* `bf16` settings: inference and training steps under `torch.autocast(dtype=torch.bfloat16)`.
"""

TABLE_COLUMNS = ['model', 'B', 'Params', 'FLOPs', 'infer img/s', 'infer ms/batch',
                 'infer ratio', 'train ms/step', 'train ratio', 'peak train MB', 'mem ratio',
                 'paper Params', 'paper FLOPs', 'paper FPS', 'paper ratio']

#: EAN / plain twin limits: (inference, training step, peak training memory).
TARGETS = {'ResNet-50': (1.05, 1.08, 1.10), 'MobileNeXt': (1.08, 1.12, 1.10)}
#: EAN / plain twin limits of exported inference (onnxruntime, OpenVINO), by family: classifier
#: family names, detector families by their config's first word.
RUNTIME_TARGETS = {'ResNet-50': 1.15, 'MobileNeXt': 1.25, 'ssdlite320': 1.10,
                   'faster': 1.10}
RUNTIME_LABELS = {'onnxruntime': 'onnxruntime', 'openvino': 'OpenVINO'}


def _ratio_series(res: Result, twin: Result, key: str) -> List[float]:
    a, b = getattr(res, key), getattr(twin, key)
    return _ratios(a, b)


def _ratios(a: List[float], b: List[float]) -> List[float]:
    return [x / y for x, y in zip(a, b) if y > 0]


def runtime_target(family: str) -> Optional[float]:
    """The :data:`RUNTIME_TARGETS` limit of ``family`` (``None``: none set)."""
    return RUNTIME_TARGETS.get(family, RUNTIME_TARGETS.get(family.split('_')[0]))


def _runtime_rows(res: Result, twin: Optional[Result]) -> Dict[str, dict]:
    """Per runtime key: ``ms`` (median), and against the twin's default-form series of the
    same runtime ``ratio`` (median of same-round ratios) and ``range``."""
    out = {}
    for key, series in res.runtime_s.items():
        entry: dict = dict(ms=_ms(statistics.median(series)) if series else None)
        base = twin.runtime_s.get(key.split(':')[0]) if twin is not None else None
        ratios = _ratios(series, base) if base else []
        if ratios:
            entry.update(ratio=statistics.median(ratios), range=(min(ratios), max(ratios)))
        out[key] = entry
    return out


def _ms(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else seconds * 1e3


def summarize(results: Dict[str, Result]) -> List[dict]:
    """One row per model: medians in ms, images/s, ratios to the plain twin with their min-max,
    the paper's Table 3 figures."""
    rows = []
    for name, res in results.items():
        twin = results.get(res.spec.twin) if res.spec.twin else None
        row = dict(name=name, label=res.spec.label, family=res.spec.family,
                   attention=res.spec.attention, twin=res.spec.twin, batch=res.batch_size,
                   params=res.params, flops=res.flops, flops_note=res.flops_note,
                   infer_ms=_ms(res.median('infer_s')), train_ms=_ms(res.median('train_s')),
                   ean_layers=res.ean_layers, peak_mb=res.memory.get('peak_mb'),
                   state_mb=res.memory.get('state_mb'), rounds=len(res.infer_s),
                   profile=res.profile, runtimes=_runtime_rows(res, twin),
                   infer_s=res.infer_s, train_s=res.train_s, runtime_s=res.runtime_s,
                   infer_faults=res.median('infer_faults'), runtime_profile=res.runtime_profile)
        med = res.median('infer_s')
        row['img_s'] = res.batch_size / med if med else None
        if twin is not None:
            for key, short in (('infer_s', 'infer'), ('train_s', 'train')):
                series = _ratio_series(res, twin, key)
                if series:
                    row[f'{short}_ratio'] = statistics.median(series)
                    row[f'{short}_ratio_range'] = (min(series), max(series))
            if row['peak_mb'] and twin.memory.get('peak_mb'):
                row['mem_ratio'] = row['peak_mb'] / twin.memory['peak_mb']
        paper = res.spec.paper
        if paper is not None:
            row['paper'] = dict(params=f'{paper.params_m:.2f}M', flops=paper.flops,
                                fps=paper.fps)
            twin_paper = CLASSIFIERS[res.spec.twin].paper if res.spec.twin in CLASSIFIERS \
                else None
            if twin_paper is not None:
                row['paper_ratio'] = twin_paper.fps / paper.fps
        rows.append(row)
    return rows


def _fmt_count(n: Optional[float]) -> str:
    if n is None:
        return '-'
    for unit, div in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if abs(n) >= div:
            return f'{n / div:.2f}{unit}'
    return str(n)


def _f(v: Optional[float], fmt: str, none: str = '-') -> str:
    return none if v is None else format(v, fmt)


def _ratio_cell(row: dict, key: str) -> str:
    if key not in row:
        return '1 (twin)' if row['twin'] is None else '-'
    rng = row.get(f'{key}_range')
    text = f'**{row[key]:.3f}**'
    if rng:
        text += f' ({rng[0]:.2f}-{rng[1]:.2f})'
    return text


def markdown(rows: List[dict], opts: Options, info: Dict[str, str], command: str) -> str:
    """The report of one setting: machine, command, the table, targets, optional onnxruntime
    and profile sections, method."""
    mode = f'EAN `{opts.ean_impl}`' + (', bf16 autocast' if opts.amp else '')
    out = [f'# EAN speed / memory benchmark ({mode}, {opts.img_size}x{opts.img_size}, '
           f'{info["device"]})', '']
    out += [f'- {k}: {v}' for k, v in info.items()]
    out += [f'- command: `{command}`',
            f'- settings: rounds {opts.rounds} (interleaved), warm-up {opts.warmup}, '
            f'{opts.iters} iteration(s) per model per round, threads '
            f'{opts.threads or "default"}, memory: {opts.mem_steps} measured step(s) after '
            f'{max(opts.warmup, 1)} warm-up step(s), {opts.mem_repeats} fresh process(es) '
            f'per model', '']
    out += ['| ' + ' | '.join(TABLE_COLUMNS) + ' |', '|' + '---|' * len(TABLE_COLUMNS)]
    for row in rows:
        paper = row.get('paper') or {}
        flops = _fmt_count(row['flops']) + ('*' if row['flops_note'] else '')
        out.append('| ' + ' | '.join([
            row['label'], str(row['batch']), _fmt_count(row['params']), flops,
            _f(row['img_s'], '.1f'), _f(row['infer_ms'], '.1f'), _ratio_cell(row, 'infer_ratio'),
            _f(row['train_ms'], '.1f'), _ratio_cell(row, 'train_ratio'),
            _f(row['peak_mb'], '.0f'),
            _f(row.get('mem_ratio'), '.3f', '1 (twin)' if row['twin'] is None else '-'),
            paper.get('params', '-'), paper.get('flops', '-'), str(paper.get('fps', '-')),
            _f(row.get('paper_ratio'), '.2f', '1' if paper and row['twin'] is None else '-'),
        ]) + ' |')
    out += ['', 'Ratios are variant / plain twin (lower is better; latency for inference), the '
            'median over rounds of the same-round ratio, with its min-max over rounds in '
            'brackets. "paper ratio" is the latency ratio implied by the paper\'s FPS column '
            '(plain FPS / variant FPS). Paper columns: EAN paper (Li, Li & Wen, AAAI 2024), '
            'Table 3, ImageNet-1K classifiers at 224x224 (hardware not stated there).']
    faulting = [row for row in rows if row.get('infer_faults') is not None]
    if faulting:
        out += ['', 'Minor page faults per inference batch (median over rounds; fresh pages the '
                'allocator took from the kernel, each zeroed on first touch): ' + ', '.join(
                    f"{row['label']} {row['infer_faults']:,.0f}" for row in faulting) + '.']
    if any(r['flops_note'] for r in rows):
        out += ['', '\\* ' + '; '.join(sorted({f"{r['label']}: {r['flops_note']}"
                                                for r in rows if r['flops_note']}))]
    out += ['', '## Targets (EAN vs plain twin)', '']
    out += target_lines(rows) + ['']
    if any(row.get('runtimes') for row in rows):
        out += runtime_lines(rows)
    if any(row.get('profile') for row in rows):
        out += profile_lines(rows, opts)
    if any(row.get('runtime_profile') for row in rows):
        out += runtime_profile_lines(rows, opts)
    out += ['## Method', '', METHOD]
    return '\n'.join(out) + '\n'


def _runtime_and_form(key: str, row: dict) -> Tuple[str, str]:
    """A runtime entry's key (``runtime`` or ``runtime:form``) as (runtime, form label): an EAN
    model's unnamed form is ``default``, a model without EAN has none (``-``)."""
    runtime, _, form = key.partition(':')
    return runtime, form or ('default' if row.get('ean_layers') else '-')


def _cell(entry: dict) -> str:
    if 'ratio' not in entry:
        return '1 (twin)'
    return f"**{entry['ratio']:.3f}** ({entry['range'][0]:.2f}-{entry['range'][1]:.2f})"


def runtime_lines(rows: List[dict]) -> List[str]:
    """The deployment section: each exported model's time and ratio per runtime (and EAN export
    form) beside PyTorch's, and the EAN rows against :data:`RUNTIME_TARGETS`."""
    out = ['## Exported inference: onnxruntime and OpenVINO (the deployment cost)', '',
           'Each model exported to ONNX (classifiers with the TorchScript-based exporter, '
           'detectors as tools/deployment/export_onnx.py exports them: box decoding and NMS '
           'included) and run on the CPU by each runtime, same batch, same threads, rounds '
           'interleaved as above; an EAN model\'s export form is named when it is not the '
           'default; PyTorch columns from the table above.', '',
           '| model | B | runtime | export form | ms/batch | ratio | PyTorch ms/batch '
           '| PyTorch ratio |', '|' + '---|' * 8]
    checks = []
    for row in rows:
        for key, entry in row.get('runtimes', {}).items():
            runtime, form = _runtime_and_form(key, row)
            out.append(f"| {row['label']} | {row['batch']} | {RUNTIME_LABELS[runtime]} | "
                       f"{form} | {_f(entry['ms'], '.1f')} | {_cell(entry)} | "
                       f"{_f(row['infer_ms'], '.1f')} | {_ratio_cell(row, 'infer_ratio')} |")
            limit = runtime_target(row['family'])
            if row['attention'] == 'EAN' and 'ratio' in entry and limit is not None \
                    and form == 'default':
                ok = entry['ratio'] <= limit
                checks.append(f"- {row['label']}, {RUNTIME_LABELS[runtime]}: "
                              f"{entry['ratio']:.3f}x (target <= {limit:.2f}x: "
                              f"{'met' if ok else 'NOT met'})")
    return out + [''] + checks + ['']


def profile_lines(rows: List[dict], opts: Options) -> List[str]:
    """The profile section: ms per iteration by category, each model and mode."""
    cats = list(PROFILE_CATEGORIES)
    unit = 'device' if opts.device == 'cuda' else 'CPU'
    out = [f'## Profile (torch.profiler, self {unit} time per iteration, ms)', '',
           f'{opts.profile} iteration(s) per model and mode after the timed rounds; every '
           'event\'s self time goes to the outermost recognised op around it (EAN = everything '
           'under EAN\'s kernel ops and its BatchNorm+EAN autograd step, forward and backward). '
           f'Top-op tables: `{opts.name}_profile_<model>_<mode>.txt`.', '',
           '| model | mode | ' + ' | '.join(cats) + ' | total |', '|' + '---|' * (len(cats) + 3)]
    for row in rows:
        for mode, cat_ms in (row.get('profile') or {}).items():
            out.append(f"| {row['label']} | {mode} | " + ' | '.join(
                f'{cat_ms[c]:.1f}' for c in cats) + f' | {sum(cat_ms.values()):.1f} |')
    return out + ['']


def runtime_profile_lines(rows: List[dict], opts: Options) -> List[str]:
    """The exported models' profiles: per variant and runtime, each operator type's nodes and ms
    per batch beside its plain twin's (the runtime's own profiler)."""
    out = ['## Runtime profiles (each runtime\'s own per-node times, ms per batch)', '',
           f'{opts.profile} batch(es) per exported model after {opts.warmup} more, in a new '
           'session with the runtime\'s profiler on (onnxruntime `enable_profiling`, OpenVINO '
           '`PERF_COUNT`), summed by operator type (OpenVINO\'s after its own fusions).', '',
           '| model | runtime | operator type | nodes | ms/batch | plain twin nodes | plain twin '
           'ms/batch |', '|' + '---|' * 7]
    by_name = {row['name']: row for row in rows}
    for row in rows:
        if row['twin'] is None:
            continue
        for key, ops in (row.get('runtime_profile') or {}).items():
            runtime, form = _runtime_and_form(key, row)
            plain = by_name.get(row['twin'], {}).get('runtime_profile', {}).get(runtime, {})
            label = RUNTIME_LABELS[runtime] + ('' if form in ('default', '-') else f' ({form})')
            for op in list(ops) + [op for op in plain if op not in ops]:
                ms, nodes = ops.get(op, (0.0, 0))
                twin_ms, twin_nodes = plain.get(op, (0.0, 0))
                out.append(f"| {row['label']} | {label} | {op} | {nodes:.0f} | {ms:.1f} | "
                           f"{twin_nodes:.0f} | {twin_ms:.1f} |")
            total, twin_total = (sum(ms for ms, _ in p.values()) for p in (ops, plain))
            out.append(f"| {row['label']} | {label} | **all** | | **{total:.1f}** | | "
                       f"**{twin_total:.1f}** |")
    return out + ['']


def target_lines(rows: List[dict]) -> List[str]:
    """Per EAN model: its ratios against :data:`TARGETS` and against SE / CA."""
    by_family: Dict[str, Dict[str, dict]] = {}
    for row in rows:
        by_family.setdefault(row['family'], {})[row['attention']] = row
    lines = []
    for family, members in by_family.items():
        ean = members.get('EAN')
        if ean is None:
            continue
        checks = []
        limits = zip(('infer_ratio', 'train_ratio', 'mem_ratio'),
                     TARGETS.get(family, (None, ) * 3),
                     ('inference latency', 'training step', 'peak training memory'))
        for key, limit, what in limits:
            if key in ean and limit is not None:
                ok = ean[key] <= limit
                checks.append(f"{what} {ean[key]:.3f}x (target <= {limit:.2f}x: "
                              f"{'met' if ok else 'NOT met'})")
            elif key in ean:
                checks.append(f'{what} {ean[key]:.3f}x')
            for other in ('SE', 'CA'):
                if key in ean and other in members and key in members[other]:
                    ok = ean[key] < members[other][key]
                    checks.append(f"{what} vs {other} {members[other][key]:.3f}x: "
                                  f"{'cheaper' if ok else 'NOT cheaper'}")
        lines.append(f"- {ean['label']}: " + '; '.join(checks))
    return lines or ['- (no EAN model in this run)']


def summary_markdown(all_rows: Dict[str, List[dict]], opts: Options, command: str) -> str:
    """The variant / plain ratios of every setting in one table, with the targets."""
    out = [f'# EAN benchmark summary (EAN `{opts.ean_impl}`, {opts.img_size}x{opts.img_size})',
           '', f'- command: `{command}`', f"- date: {machine_info(torch.device('cpu'))['date']}",
           f'- one report per setting: `{opts.name}-<setting>.md`', '',
           '| setting | model | infer ratio | train ratio | mem ratio | infer ms | train ms |',
           '|' + '---|' * 7]
    for label, rows in all_rows.items():
        for row in rows:
            if row['twin'] is None:
                continue
            out.append(f"| {label} | {row['label']} | {_ratio_cell(row, 'infer_ratio')} | "
                       f"{_ratio_cell(row, 'train_ratio')} | "
                       f"{_f(row.get('mem_ratio'), '.3f')} | {_f(row['infer_ms'], '.1f')} | "
                       f"{_f(row['train_ms'], '.1f')} |")
    deployed = [(label, row, key, entry) for label, rows in all_rows.items() for row in rows
                for key, entry in row.get('runtimes', {}).items() if row['twin'] is not None]
    if deployed:
        out += ['', '| setting | model | runtime | export form | ratio | ms/batch '
                '| plain ms/batch |', '|' + '---|' * 7]
        for label, row, key, entry in deployed:
            runtime, form = _runtime_and_form(key, row)
            twin = next((r for r in all_rows[label] if r['name'] == row['twin']), {})
            plain = twin.get('runtimes', {}).get(runtime, {}).get('ms')
            out.append(f"| {label} | {row['label']} | {RUNTIME_LABELS[runtime]} | {form} | "
                       f"{_cell(entry)} | {_f(entry['ms'], '.1f')} | {_f(plain, '.1f')} |")
    out += ['', '## Targets', '']
    for label, rows in all_rows.items():
        out += [f'{label}:'] + target_lines(rows) + ['']
        if any(row.get('runtimes') for row in rows):
            out += [line for line in runtime_lines(rows) if line.startswith('- ')] + ['']
    return '\n'.join(out) + '\n'
