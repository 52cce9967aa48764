"""Peak training memory, one fresh process per model: ``torch.cuda.max_memory_allocated`` on
CUDA; on CPU the resident set's high-water mark over the measured steps minus the resident set
before them, plus the persistent training state."""
import json
import os
import re
import statistics
import subprocess
import sys
from typing import Dict, List, Tuple

import torch

from .options import Options
from .result import Result
from .runtime import log, setup_runtime
from .twins import ModelSpec, build_model, spec_of
from .workload import Bench

__all__ = ['probe_memory', 'run_probe', 'measure_memory']

#: The probe process: one job (JSON) in ``argv[1]``, its result as the last JSON line printed.
_PROBE = ('import json, sys; from ean_mm.benchmark.memory import probe_memory; '
          'print(json.dumps(probe_memory(json.loads(sys.argv[1]))), flush=True)')


def _proc_status(key: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process in bytes (0 where /proc is missing)."""
    try:
        with open('/proc/self/status') as f:
            m = re.search(rf'^{key}:\s+(\d+) kB', f.read(), re.M)
        return int(m.group(1)) * 1024 if m else 0
    except OSError:
        return 0


def _reset_peak_rss() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def probe_memory(job: dict) -> dict:
    """Build, warm up, then measure peak memory over training steps; meant for a fresh process
    (:func:`run_probe`). ``job``: model, device, threads, batch_size, img_size, ean_impl,
    warmup, steps, amp."""
    setup_runtime(job['device'], job['threads'])
    spec = spec_of(job['model'])
    device = torch.device(job['device'])
    model = build_model(spec, job['ean_impl'])
    bench = Bench(spec, model, job['batch_size'], job['img_size'], device, amp=job['amp'])
    for _ in range(job['warmup']):
        bench.train_step()
    bench.optimizer.zero_grad(set_to_none=True)
    bench.sync()
    state = bench.state_bytes()
    result = dict(state_mb=state / 2**20, method='')
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(job['steps']):
            bench.train_step()
        bench.sync()
        result['peak_mb'] = torch.cuda.max_memory_allocated(device) / 2**20
        result['method'] = 'torch.cuda.max_memory_allocated'
        return result
    rss0 = _proc_status('VmRSS')
    exact = _reset_peak_rss()  # VmHWM := VmRSS now
    result['method'] = ('VmHWM - VmRSS + state' if exact else
                        'ru_maxrss - VmRSS + state (no clear_refs: may miss peaks below '
                        'earlier ones)')
    for _ in range(job['steps']):
        bench.train_step()
    if exact:
        peak = _proc_status('VmHWM')
    else:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result['step_mb'] = max(peak - rss0, 0) / 2**20
    result['peak_mb'] = result['step_mb'] + result['state_mb']
    return result


def run_probe(job: dict) -> subprocess.Popen:
    """:func:`probe_memory` of ``job`` in a fresh process, glibc returning every allocation
    >= 64 KiB to the system when freed (so that the resident set follows live tensors)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    return subprocess.Popen([sys.executable, '-c', _PROBE, json.dumps(job)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _probe_result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        tail = '\n'.join(err.strip().splitlines()[-5:])
        return dict(error=f'probe exited {proc.returncode}: {tail}')
    for line in reversed(out.strip().splitlines()):
        if line.startswith('{'):
            return json.loads(line)
    return dict(error='probe printed no result')


def measure_memory(specs: List[ModelSpec], opts: Options, results: Dict[str, Result]) -> None:
    """``results[name].memory`` of every model: the median peak over ``opts.mem_repeats``
    probes, ``opts.mem_jobs`` of them side by side (they only read memory)."""
    jobs = []
    for spec in specs:
        for _ in range(opts.mem_repeats):
            jobs.append((spec, dict(
                model=spec.name, device=opts.device, threads=opts.threads,
                batch_size=opts.batch_size or spec.batch_size, img_size=opts.img_size,
                ean_impl=opts.ean_impl, warmup=max(opts.warmup, 1), steps=opts.mem_steps,
                amp=opts.amp)))
    # Interleaved order (model A, B, ..., A, B, ...); only memory is read from these processes,
    # so running them side by side changes nothing.
    pending = sorted(range(len(jobs)), key=lambda i: (i % opts.mem_repeats, i))
    running: List[Tuple[ModelSpec, subprocess.Popen]] = []
    samples: Dict[str, List[dict]] = {s.name: [] for s in specs}

    def reap(entry: Tuple[ModelSpec, subprocess.Popen]) -> None:
        spec, proc = entry
        out = _probe_result(proc)
        samples[spec.name].append(out)
        shown = f"{out['peak_mb']:.0f} MB" if 'peak_mb' in out else out.get('error')
        log(f'[memory] {spec.label}: {shown}')

    for i in pending:
        spec, job = jobs[i]
        while len(running) >= opts.mem_jobs:
            reap(running.pop(0))
        log(f'[memory] probe {spec.label} ({len(samples[spec.name]) + 1}/{opts.mem_repeats})')
        running.append((spec, run_probe(job)))
    while running:
        reap(running.pop(0))
    for spec in specs:
        good = [s for s in samples[spec.name] if 'peak_mb' in s]
        mem = dict(peak_mb=statistics.median([s['peak_mb'] for s in good]) if good else None,
                   samples=samples[spec.name])
        if good:
            mem['state_mb'] = good[0]['state_mb']
            mem['method'] = good[0]['method']
        results[spec.name].memory = mem
