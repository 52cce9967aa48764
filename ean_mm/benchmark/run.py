"""A whole benchmark: every family measured in every setting, one report set per setting
(``<out_dir>/<name>.md``, ``.json``, ``.png``) and a summary over the settings."""
import dataclasses
import json
import os
import os.path as osp
import time
from typing import Dict, List

import torch

from ..models import EAN
from .flops import count_flops, count_params
from .memory import measure_memory
from .options import Options
from .ort import measure_runtimes
from .plot import plot
from .profiling import profile
from .report import markdown, summarize, summary_markdown
from .result import Result
from .runtime import log, machine_info, runtime_versions, setup_runtime
from .settings import parse_settings
from .timing import interleaved_rounds, warm_up
from .twins import ModelSpec, build_model, resolve
from .workload import Bench

__all__ = ['measure_family', 'run_setting', 'run_benchmark']


def measure_family(specs: List[ModelSpec], opts: Options, device: torch.device,
                   results: Dict[str, Result]) -> None:
    """Params, FLOPs, warm-up, interleaved rounds (and profile, the exported models in
    onnxruntime / OpenVINO if asked) of one family, the plain twin first; into ``results``."""
    benches: List[Bench] = []
    for spec in specs:
        batch = opts.batch_size or spec.batch_size
        log(f'[{spec.family}] building {spec.label} (batch {batch}, {opts.img_size}x'
            f'{opts.img_size})')
        model = build_model(spec, opts.ean_impl)
        res = results[spec.name] = Result(spec, batch, count_params(model))
        res.ean_layers = sum(isinstance(m, EAN) for m in model.modules())
        if not opts.no_flops:
            res.flops, res.flops_note = count_flops(model, spec, opts.img_size, device)
        bench = Bench(spec, model, batch, opts.img_size, device, amp=opts.amp)
        bench.calibrate_norms()
        benches.append(bench)
    modes = ('infer', ) if opts.no_train else ('infer', 'train')
    warm_up(benches, opts.warmup, modes)
    interleaved_rounds(benches, results, opts.rounds, opts.iters, modes)
    if opts.profile:
        for bench in benches:
            if bench.spec.attention in ('plain', 'EAN'):
                results[bench.spec.name].profile = profile(bench, opts.profile, opts.out_dir,
                                                           opts.name, modes)
    runtimes = [r for r in ('onnxruntime', 'openvino') if getattr(opts, r)]
    if runtimes:
        measure_runtimes(benches, results, opts.warmup, opts.rounds, opts.iters, opts.threads,
                         runtimes, opts.export_forms, opts.profile)


def run_setting(specs: List[ModelSpec], opts: Options, name: str, command: str) -> List[dict]:
    """Every family measured in ``opts``' one setting; the report files ``<out_dir>/<name>.*``;
    returns the rows."""
    setup_runtime(opts.device, opts.threads)
    device = torch.device(opts.device)
    info = machine_info(device)
    info['autocast'] = 'bf16' if opts.amp else 'off'
    info.update(runtime_versions(opts))
    results: Dict[str, Result] = {}
    t0 = time.time()
    families: Dict[str, List[ModelSpec]] = {}
    for spec in specs:
        families.setdefault(spec.family, []).append(spec)
    for members in families.values():
        measure_family(members, opts, device, results)
    if not opts.no_memory:
        measure_memory(specs, opts, results)
    rows = summarize(results)
    info['wall time'] = f'{time.time() - t0:.0f} s'
    text = markdown(rows, opts, info, command)
    stem = osp.join(opts.out_dir, name)
    with open(stem + '.md', 'w') as f:
        f.write(text)
    with open(stem + '.json', 'w') as f:
        json.dump(dict(info=info, command=command, args=dataclasses.asdict(opts), rows=rows), f,
                  indent=1)
    title = (f"variant / plain twin, {opts.img_size}x{opts.img_size}, {info['device']} "
             f"({info['torch threads']} threads{', bf16' if opts.amp else ''}), EAN "
             f'{opts.ean_impl}')
    plot(rows, stem + '.png', title)
    print(text)
    log(f'benchmark: wrote {stem}.md, {stem}.png, {stem}.json')
    return rows


def run_benchmark(opts: Options, command: str) -> List[dict]:
    """:func:`run_setting` for each of ``opts.settings`` (``None``: the one of ``opts.device``,
    ``threads``, ``amp``), then the summary ``<out_dir>/<name>.md`` over several; returns
    every row. ``command`` is written into the reports."""
    name = opts.name or opts.ean_impl
    settings = opts.settings or parse_settings(None, opts.device, opts.threads, opts.amp)
    opts = dataclasses.replace(opts, name=name, settings=settings)
    os.makedirs(opts.out_dir, exist_ok=True)
    specs = resolve(opts.models)
    log(f'benchmark: {len(specs)} models: ' + ', '.join(s.label for s in specs))
    all_rows = {}
    for setting in settings:
        one = dataclasses.replace(opts, device=setting['device'], threads=setting['threads'],
                                  amp=setting['amp'])
        stem = name if len(settings) == 1 else f"{name}-{setting['label'].replace(':', '-')}"
        all_rows[setting['label']] = run_setting(specs, one, stem, command)
    if len(settings) > 1:
        summary = summary_markdown(all_rows, opts, command)
        with open(osp.join(opts.out_dir, name + '.md'), 'w') as f:
            f.write(summary)
        print(summary)
    return [row for rows in all_rows.values() for row in rows]
