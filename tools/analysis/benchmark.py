"""Speed / memory benchmark: EAN against its plain twin and the SE / CA baselines.

    python tools/analysis/benchmark.py                      # paper Table 3 set, 224x224, CPU
    python tools/analysis/benchmark.py --settings all       # CPU 1 and 2 threads, bf16, CUDA
    python tools/analysis/benchmark.py --ean-impl fused --compile   # the torch.compile path
    python tools/analysis/benchmark.py --models ean-r50 --batch-size 8 --rounds 10
    python tools/analysis/benchmark.py --models configs/ssdlite320_ean_mobilenext_coco.py \\
        --img-size 320
    python tools/analysis/benchmark.py --models ean-r50 ean-mx --onnxruntime  # deployment cost

Every attention variant runs in the same invocation as its plain twin, interleaved round by
round; medians and variant / plain ratios go into a markdown table (beside the paper's Table 3
columns), a JSON file and a PNG bar chart under ``--out-dir`` (default ``work_dirs/benchmark``),
one set per setting (device, threads, bf16 autocast) and a summary over the settings.
Method: :data:`METHOD` (also written into every report).
"""
import argparse
import copy
import datetime
import json
import logging
import os
import os.path as osp
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

import ean_mm  # noqa: F401  (registers ean_mm's components)
from ean_mm.models import set_ean_implementation
from ean_mm.models.layers.ean import IMPLEMENTATIONS
from ean_mm.paper import CLASSIFIERS, Table3Row, classifier_cfg
from ean_mm.utils import quiet_mmengine

METHOD = """\
* Params: all parameters. FLOPs: mmengine `FlopAnalyzer`, one image, one multiply-add = 1 FLOP,
  elementwise ops (sigmoid, products, adds) not counted; the fused EAN op is counted like the
  GroupNorm of its reference path (5 FLOPs/element, mmengine's norm rule).
* Inference: eval mode, `torch.no_grad()`, batch B of random images; images/s = B / median
  batch time.
* Training step: train mode, forward + loss (cross-entropy for classifiers, the detector's own
  losses for detectors) + backward + SGD step (momentum 0.9, weight decay 1e-4).
* Runs are interleaved: each round times every model of a family once, in order (the plain twin
  first); a ratio is the median over rounds of variant time / plain-twin time *in the same
  round*, so slow phases of a shared machine hit both sides of a ratio. Times are medians over
  rounds. Warm-up iterations (and any compilation) are excluded.
* Peak training memory: a fresh process per model. CUDA: `torch.cuda.max_memory_allocated`
  over the measured training steps. CPU: the resident set's high-water mark (`VmHWM`, reset via
  `/proc/self/clear_refs`) during the measured steps minus the resident set just before them,
  plus the bytes of the persistent training state (parameters, buffers, optimizer state), with
  glibc returning every allocation >= 64 KiB to the system when freed
  (`MALLOC_MMAP_THRESHOLD_=65536`) so that the resident set follows live tensor memory rather
  than the allocator's cache. Warm-up steps (and compilation) run before the measured ones.
* CPU runs flush denormals to zero (`torch.set_flush_denormal(True)`), as the training tools do.
* `bf16` settings: inference and training steps under `torch.autocast(dtype=torch.bfloat16)`.
"""


# ------------------------------------------------------------------------------ models
@dataclass
class ModelSpec:
    name: str  # preset name (ean_mm.paper.CLASSIFIERS) or config path
    label: str
    kind: str  # 'classifier' | 'detector'
    twin: Optional[str]  # name of the plain twin (None: this is a plain model)
    family: str
    batch_size: int  # default batch size
    attention: str = 'plain'  # 'plain' | 'SE' | 'CA' | 'EAN'
    paper: Optional[Table3Row] = None


#: Default batch size per classifier family (detectors: 2).
FAMILY_BATCH = {'ResNet-50': 8, 'MobileNeXt': 16, 'MobileNetV2': 16, 'ResNet-18': 8}


def preset_spec(name: str) -> ModelSpec:
    p = CLASSIFIERS[name]
    return ModelSpec(p.name, p.label, 'classifier', p.twin, p.family,
                     FAMILY_BATCH.get(p.family, 8), p.attention, p.paper)


DEFAULT_MODELS = ['r50', 'se-r50', 'ca-r50', 'ean-r50', 'mx', 'se-mx', 'ca-mx', 'ean-mx']
_ATTENTION_TAGS = {'ean': 'EAN', 'se': 'SE', 'ca': 'CA'}


def _config_spec(path: str) -> ModelSpec:
    """A detector config; its twin is the same file name without ``_ean`` / ``_se`` / ``_ca``."""
    if not osp.isfile(path):
        raise SystemExit(f'benchmark: {path!r} is neither a preset '
                         f'({", ".join(CLASSIFIERS)}) nor a config file.')
    base = osp.basename(path)
    stem = osp.splitext(base)[0]
    twin, attention = None, 'plain'
    for tag, name in _ATTENTION_TAGS.items():
        plain = re.sub(rf'(^|_){tag}_', r'\1', stem, count=1)
        if plain != stem:
            twin = osp.join(osp.dirname(path), plain + '.py')
            attention = name
            if not osp.isfile(twin):
                raise SystemExit(f'benchmark: the plain twin of {path} ({twin}) does not exist.')
            break
    family = osp.splitext(osp.basename(twin))[0] if twin else stem
    return ModelSpec(osp.normpath(path), stem, 'detector', osp.normpath(twin) if twin else None,
                     family, 2, attention)


def resolve(names: Sequence[str]) -> List[ModelSpec]:
    """Specs for ``names`` (presets or config paths), plain twins added where missing; grouped by
    family (first appearance), the plain twin first in each family."""
    specs: Dict[str, ModelSpec] = {}

    def add(name: str) -> None:
        spec = preset_spec(name) if name in CLASSIFIERS else _config_spec(name)
        if spec.name in specs:
            return
        if spec.twin is not None:
            add(spec.twin)
        specs[spec.name] = spec

    for name in names:
        add(name)
    families: Dict[str, List[ModelSpec]] = {}
    for spec in specs.values():
        families.setdefault(spec.family, []).append(spec)
    ordered = []
    for members in families.values():
        ordered += sorted(members, key=lambda s: s.twin is not None)  # stable: plain first
    return ordered


# ------------------------------------------------------------------------------ building
def build_model(spec: ModelSpec, implementation: str = 'auto',
                use_compile: bool = False) -> nn.Module:
    from mmengine.registry import init_default_scope
    if spec.kind == 'classifier':
        from mmpretrain.registry import MODELS
        init_default_scope('mmpretrain')
        model = MODELS.build(classifier_cfg(spec.name))
    else:
        from mmdet.registry import MODELS
        from mmengine.config import Config
        init_default_scope('mmdet')
        cfg = Config.fromfile(spec.name).model
        cfg.backbone.init_cfg = None  # random weights: no checkpoint needed
        model = MODELS.build(cfg)
    with quiet_mmengine():
        model.init_weights()  # mmengine logs every parameter's initialisation at INFO
    set_ean_implementation(model, implementation, use_compile)
    return model


def _num_classes(model: nn.Module) -> int:
    for path in ('bbox_head', 'roi_head.bbox_head'):
        obj = model
        for part in path.split('.'):
            obj = getattr(obj, part, None)
        if obj is not None and hasattr(obj, 'num_classes'):
            return int(obj.num_classes)
    return 1


def detection_samples(batch: int, size: int, num_classes: int, device,
                      with_gt: bool = True, seed: int = 0) -> list:
    """Synthetic ``DetDataSample`` s for ``(batch, 3, size, size)`` inputs: 3 boxes each."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(batch):
        s = DetDataSample(metainfo=dict(
            img_id=i, img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
            batch_input_shape=(size, size), scale_factor=(1.0, 1.0)))
        if with_gt:
            xy = torch.rand(3, 2, generator=g) * size * 0.6
            wh = (torch.rand(3, 2, generator=g) * 0.35 + 0.05) * size
            s.gt_instances = InstanceData(
                bboxes=torch.cat([xy, xy + wh], 1).to(device),
                labels=torch.randint(num_classes, (3, ), generator=g).to(device))
        samples.append(s)
    return samples


class Bench:
    """A model with its inputs, loss and optimizer: one inference batch, one training step."""

    def __init__(self, spec: ModelSpec, model: nn.Module, batch: int, size: int,
                 device: torch.device, seed: int = 0, amp: bool = False) -> None:
        self.spec, self.model, self.device, self.amp = spec, model.to(device), device, amp
        g = torch.Generator().manual_seed(seed)
        self.inputs = torch.randn(batch, 3, size, size, generator=g).to(device)
        if spec.kind == 'classifier':
            self.labels = torch.randint(1000, (batch, ), generator=g).to(device)
        else:
            n = _num_classes(model)
            self.train_samples = detection_samples(batch, size, n, device, seed=seed)
            self.test_samples = detection_samples(batch, size, n, device, with_gt=False)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9, weight_decay=1e-4)

    def sync(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def infer(self) -> None:
        self.model.eval()
        with torch.no_grad(), self.autocast():
            if self.spec.kind == 'classifier':
                self.model(self.inputs, mode='tensor')
            else:
                self.model.predict(self.inputs, copy.deepcopy(self.test_samples))

    def loss(self) -> torch.Tensor:
        if self.spec.kind == 'classifier':
            return F.cross_entropy(self.model(self.inputs, mode='tensor'), self.labels)
        losses = self.model.loss(self.inputs, copy.deepcopy(self.train_samples))
        return self.model.parse_losses(losses)[0]

    def train_step(self) -> None:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            loss = self.loss()
        loss.backward()
        self.optimizer.step()

    def state_bytes(self) -> int:
        """Bytes of the persistent training state: parameters, buffers, optimizer state."""
        seen, total = set(), 0
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        for state in self.optimizer.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
        for t in tensors:
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                total += t.numel() * t.element_size()
        return total

    def timed(self, fn: Callable[[], None], iters: int = 1) -> float:
        """Seconds per call of ``fn`` averaged over ``iters`` calls."""
        self.sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        self.sync()
        return (time.perf_counter() - t0) / iters


# ------------------------------------------------------------------------------ counting
def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _ean_flop_handle(inputs, outputs) -> int:
    from mmengine.analysis.jit_handles import get_shape
    shape = get_shape(inputs[0])
    n = 1
    for d in shape:
        n *= d
    return 5 * n  # as mmengine counts GroupNorm with affine: the reference path's count


def count_flops(model: nn.Module, spec: ModelSpec, size: int,
                device: torch.device) -> Tuple[Optional[int], str]:
    """FLOPs of one ``size x size`` image (mmengine's counter); ``(flops, note)``."""
    from ean_mm.models import EAN
    model = model.eval()
    x = torch.randn(1, 3, size, size, device=device)
    compiled = [m for m in model.modules() if isinstance(m, EAN) and m.use_compile]
    for m in compiled:  # trace the eager kernels; same maths, no compilation under the tracer
        m.use_compile = False
    try:
        return _count_flops(model, spec, x, size, device)
    finally:
        for m in compiled:
            m.use_compile = True


def _count_flops(model, spec, x, size, device) -> Tuple[Optional[int], str]:
    with quiet_mmengine(logging.ERROR):  # unsupported-op chatter
        if spec.kind == 'classifier':
            wrapped, note = _Tensor(model, lambda m, t: m(t, mode='tensor')), ''
        else:
            samples = detection_samples(1, size, _num_classes(model), device, with_gt=False)
            wrapped = _Tensor(model, lambda m, t: m._forward(t, samples))
            # Two-stage: the RoI head's share depends on how many proposals the random weights
            # keep, so the count differs between twins for that reason too.
            note = 'incl. RoI head on random-weight proposals' if hasattr(model, 'roi_head') else ''
        try:
            flops = _analyze(wrapped, x)
        except Exception as err:  # e.g. a detector head the tracer cannot follow
            if spec.kind == 'classifier':
                return None, f'FLOPs failed: {type(err).__name__}'
            wrapped, note = _Tensor(model, lambda m, t: m.extract_feat(t)), 'backbone+neck only'
            flops = _analyze(wrapped, x)
        return flops, note


class _Tensor(nn.Module):
    """``fn(model, x)`` as a module holding ``model`` (so the tracer sees its parameters)."""

    def __init__(self, model: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, x):
        return self.fn(self.model, x)


def _analyze(module: nn.Module, x: torch.Tensor) -> int:
    import warnings

    from mmengine.analysis import FlopAnalyzer
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')
        analyzer = FlopAnalyzer(module, (x, ))
        analyzer.set_op_handle('prim::PythonOp.EANFusedFunction', _ean_flop_handle)
        analyzer.set_op_handle('ean_mm::ean_forward', _ean_flop_handle)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        return int(analyzer.total())


# ------------------------------------------------------------------------------ memory probe
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
    """Run in a fresh process: build, warm up, then measure peak memory over training steps."""
    _setup_runtime(job['device'], job['threads'])
    name = job['model']
    spec = preset_spec(name) if name in CLASSIFIERS else _config_spec(name)
    device = torch.device(job['device'])
    model = build_model(spec, job['ean_impl'], job['compile'])
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
    """This tool in a fresh process, measuring one model's memory (``--probe``)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    return subprocess.Popen(
        [sys.executable, osp.abspath(__file__), '--probe', json.dumps(job)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _probe_result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        tail = '\n'.join(err.strip().splitlines()[-5:])
        return dict(error=f'probe exited {proc.returncode}: {tail}')
    for line in reversed(out.strip().splitlines()):
        if line.startswith('{'):
            return json.loads(line)
    return dict(error='probe printed no result')


# ------------------------------------------------------------------------------ runtime
def _setup_runtime(device: str, threads: Optional[int]) -> None:
    if threads:
        torch.set_num_threads(threads)
    if device == 'cpu':
        torch.set_flush_denormal(True)


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> Dict[str, str]:
    import mmcv
    import mmdet
    import mmengine
    import mmpretrain
    info = {
        'date': datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'),
        'host': platform.node(),
        'cpu': f'{_cpu_model()} ({os.cpu_count()} logical CPUs visible)',
        'torch threads': str(torch.get_num_threads()),
        'python': platform.python_version(),
        'versions': (f'torch {torch.__version__}, mmengine {mmengine.__version__}, '
                     f'mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, '
                     f'mmpretrain {mmpretrain.__version__}'),
        'device': 'cpu',
    }
    if device.type == 'cuda':
        info['device'] = f'cuda: {torch.cuda.get_device_name(device)}'
    try:
        info['load average (start)'] = ', '.join(f'{v:.2f}' for v in os.getloadavg())
    except OSError:
        pass
    return info


def _dynamo_graphs() -> int:
    try:
        from torch._dynamo.utils import counters
        return int(counters['stats']['unique_graphs'])
    except Exception:
        return 0


def _compile_state() -> str:
    from ean_mm.models.layers import ean_fused
    return 'failed, eager fallback' if getattr(ean_fused, '_compile_failed', False) else 'ok'


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ measuring
@dataclass
class Result:
    spec: ModelSpec
    batch_size: int
    params: int = 0
    flops: Optional[int] = None
    flops_note: str = ''
    infer_s: List[float] = field(default_factory=list)
    train_s: List[float] = field(default_factory=list)
    first_infer_s: float = 0.0
    first_train_s: float = 0.0
    graphs_warmup: int = 0
    graphs_timed: int = 0
    memory: dict = field(default_factory=dict)
    ean_layers: int = 0
    profile: dict = field(default_factory=dict)
    ort_s: List[float] = field(default_factory=list)

    def median(self, key: str) -> Optional[float]:
        values = getattr(self, key)
        return statistics.median(values) if values else None


def measure_family(specs: List[ModelSpec], args, device: torch.device,
                   results: Dict[str, Result]) -> None:
    benches: List[Bench] = []
    for spec in specs:
        batch = args.batch_size or spec.batch_size
        log(f'[{spec.family}] building {spec.label} (batch {batch}, {args.img_size}x'
            f'{args.img_size})')
        model = build_model(spec, args.ean_impl, args.compile)
        res = results[spec.name] = Result(spec, batch, count_params(model))
        res.ean_layers = set_ean_implementation(model, args.ean_impl, args.compile)
        if not args.no_flops:
            res.flops, res.flops_note = count_flops(model, spec, args.img_size, device)
        benches.append(Bench(spec, model, batch, args.img_size, device, amp=args.amp))

    # Warm-up, one model after the other; the first call carries any compilation.
    for bench in benches:
        res = results[bench.spec.name]
        graphs = _dynamo_graphs()
        for mode, fn in (('infer', bench.infer), ('train', bench.train_step)):
            for i in range(args.warmup):
                t = bench.timed(fn)
                if i == 0:
                    setattr(res, f'first_{mode}_s', t)
                log(f'[{bench.spec.family}] warm-up {bench.spec.label} {mode} '
                    f'{i + 1}/{args.warmup}: {t * 1e3:.0f} ms')
        res.graphs_warmup = _dynamo_graphs() - graphs

    graphs = {b.spec.name: 0 for b in benches}
    for r in range(args.rounds):
        parts = []
        for mode in ('infer', 'train'):
            for bench in benches:
                res = results[bench.spec.name]
                before = _dynamo_graphs()
                t = bench.timed(bench.infer if mode == 'infer' else bench.train_step, args.iters)
                graphs[bench.spec.name] += _dynamo_graphs() - before
                getattr(res, f'{mode}_s').append(t)
                parts.append(f'{bench.spec.name} {mode} {t * 1e3:.0f}')
        log(f'[{specs[0].family}] round {r + 1}/{args.rounds}: ' + ', '.join(parts) + ' ms')
    for name, n in graphs.items():
        results[name].graphs_timed = n
    if args.profile:
        for bench in benches:
            if bench.spec.attention in ('plain', 'EAN'):
                results[bench.spec.name].profile = profile(bench, args)
    if args.onnxruntime:
        measure_onnxruntime(benches, args, results)
    del benches


def exported_session(bench: Bench, path: str, threads: Optional[int]):
    """``bench``'s model exported to ``path`` (classifiers: logits; detectors: the whole
    detector, NMS included, as tools/deployment/export_onnx.py writes it) in onnxruntime."""
    from ean_mm.deploy import export_onnx, onnx_session
    model = bench.model.eval()
    if bench.spec.kind == 'detector':
        export_onnx(model, path, tuple(bench.inputs.shape[-2:]), bench.inputs.shape[0])
    else:
        with torch.no_grad():  # the TorchScript-based exporter: the same graph, written faster
            torch.onnx.export(_Tensor(model, lambda m, t: m(t, mode='tensor')),
                              (bench.inputs.cpu(), ), path, dynamo=False)
    return onnx_session(path, threads)


def measure_onnxruntime(benches: List[Bench], args, results: Dict[str, Result]) -> None:
    """onnxruntime (CPU) inference of every model of a family, interleaved as above."""
    import tempfile
    family = benches[0].spec.family
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for i, bench in enumerate(benches):
            log(f'[{family}] exporting {bench.spec.label} to ONNX')
            session = exported_session(bench, osp.join(folder, f'{i}.onnx'), args.threads)
            feed = {session.get_inputs()[0].name: bench.inputs.float().cpu().numpy()}
            runs.append((bench, lambda s=session, f=feed: s.run(None, f)))
        for bench, run in runs:
            for _ in range(args.warmup):
                run()
        for r in range(args.rounds):
            parts = []
            for bench, run in runs:
                t = bench.timed(run, args.iters)
                results[bench.spec.name].ort_s.append(t)
                parts.append(f'{bench.spec.name} {t * 1e3:.0f}')
            log(f'[{family}] onnxruntime round {r + 1}/{args.rounds}: ' + ', '.join(parts)
                + ' ms')


def measure_memory(specs: List[ModelSpec], args, results: Dict[str, Result]) -> None:
    jobs = []
    for spec in specs:
        for rep in range(args.mem_repeats):
            jobs.append((spec, dict(
                model=spec.name, device=args.device, threads=args.threads,
                batch_size=args.batch_size or spec.batch_size, img_size=args.img_size,
                ean_impl=args.ean_impl, compile=args.compile, warmup=max(args.warmup, 1),
                steps=args.mem_steps, amp=args.amp)))
    # Interleaved order (model A, B, ..., A, B, ...); ``--mem-jobs`` processes at a time. Only
    # memory is read from these processes, so running them side by side changes nothing.
    pending = sorted(range(len(jobs)), key=lambda i: (i % args.mem_repeats, i))
    running: List[Tuple[ModelSpec, subprocess.Popen]] = []
    samples: Dict[str, List[dict]] = {s.name: [] for s in specs}

    def reap(entry):
        spec, proc = entry
        out = _probe_result(proc)
        samples[spec.name].append(out)
        shown = f"{out['peak_mb']:.0f} MB" if 'peak_mb' in out else out.get('error')
        log(f'[memory] {spec.label}: {shown}')

    for i in pending:
        spec, job = jobs[i]
        while len(running) >= args.mem_jobs:
            reap(running.pop(0))
        log(f'[memory] probe {spec.label} ({len(samples[spec.name]) + 1}/{args.mem_repeats})')
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


PROFILE_CATEGORIES = ('EAN', 'conv', 'batchnorm', 'relu', 'optimizer', 'other')
_PROFILE_RULES = (('EAN', ('eanfusedfunction', 'ean_mm::', '_batchnormean')),
                  ('optimizer', ('optimizer.', 'sgd')),
                  ('conv', ('conv', )),
                  ('batchnorm', ('batch_norm', 'batchnorm')),
                  ('relu', ('relu', 'threshold', 'hardtanh')))


def _category(names: List[str]) -> str:
    """Category of a profiler event from its own and its ancestors' names (innermost first); the
    outermost recognised name wins (the statistics kernel inside EAN's autograd function is EAN,
    the foreach kernels inside ``Optimizer.step`` are optimizer)."""
    found = 'other'
    for name in names:
        low = name.lower()
        for category, keys in _PROFILE_RULES:
            if any(k in low for k in keys):
                found = category
                break
    return found


def profile_breakdown(events, device: bool = False) -> Dict[str, float]:
    """Self time (us; CPU, or the device's with ``device``) per category over a profiler's
    event list."""
    totals = {c: 0.0 for c in PROFILE_CATEGORIES}
    key = 'self_device_time_total' if device else 'self_cpu_time_total'
    for evt in events:
        names, node = [], evt
        while node is not None:
            names.append(node.name)
            node = node.cpu_parent
        totals[_category(names)] += getattr(evt, key, 0.0) or 0.0
    return totals


def profile(bench: Bench, args) -> Dict[str, Dict[str, float]]:
    """``torch.profiler`` of ``args.profile`` inference batches and training steps: the top-op
    tables go under out-dir; returns ms per iteration by category for each mode (self CPU time
    on CPU, self device time on CUDA)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    activities = [ProfilerActivity.CPU]
    if bench.device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    cuda = bench.device.type == 'cuda'
    sort = 'self_device_time_total' if cuda else 'self_cpu_time_total'
    out = {}
    for mode, fn in (('infer', bench.infer), ('train', bench.train_step)):
        log(f'[profile] {bench.spec.label} {mode} x{args.profile}')
        with torch_profile(activities=activities) as prof:
            for _ in range(args.profile):
                fn()
            bench.sync()
        path = osp.join(args.out_dir, f'{args.name}_profile_{bench.spec.name}_{mode}.txt')
        with open(path, 'w') as f:
            f.write(prof.key_averages().table(sort_by=sort, row_limit=40))
        totals = profile_breakdown(prof.events(), device=cuda)
        out[mode] = {k: v / 1e3 / args.profile for k, v in totals.items()}
    return out


# ------------------------------------------------------------------------------ reporting
def _ratio_series(res: Result, twin: Result, key: str) -> List[float]:
    a, b = getattr(res, key), getattr(twin, key)
    return [x / y for x, y in zip(a, b) if y > 0]


def summarize(results: Dict[str, Result]) -> List[dict]:
    rows = []
    for name, res in results.items():
        twin = results.get(res.spec.twin) if res.spec.twin else None
        row = dict(name=name, label=res.spec.label, family=res.spec.family,
                   attention=res.spec.attention, twin=res.spec.twin, batch=res.batch_size,
                   params=res.params, flops=res.flops, flops_note=res.flops_note,
                   infer_ms=_ms(res.median('infer_s')), train_ms=_ms(res.median('train_s')),
                   first_infer_ms=_ms(res.first_infer_s), first_train_ms=_ms(res.first_train_s),
                   graphs_warmup=res.graphs_warmup, graphs_timed=res.graphs_timed,
                   ean_layers=res.ean_layers, peak_mb=res.memory.get('peak_mb'),
                   state_mb=res.memory.get('state_mb'), rounds=len(res.infer_s),
                   profile=res.profile, ort_ms=_ms(res.median('ort_s')),
                   infer_s=res.infer_s, train_s=res.train_s, ort_s=res.ort_s)
        med = res.median('infer_s')
        row['img_s'] = res.batch_size / med if med else None
        if twin is not None:
            for key, short in (('infer_s', 'infer'), ('train_s', 'train'), ('ort_s', 'ort')):
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


def _ms(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else seconds * 1e3


def _fmt_count(n: Optional[float]) -> str:
    if n is None:
        return '-'
    for unit, div in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if abs(n) >= div:
            return f'{n / div:.2f}{unit}'
    return str(n)


def _f(v, fmt: str, none: str = '-') -> str:
    return none if v is None else format(v, fmt)


def _ratio_cell(row: dict, key: str) -> str:
    if key not in row:
        return '1 (twin)' if row['twin'] is None else '-'
    rng = row.get(f'{key}_range')
    text = f'**{row[key]:.3f}**'
    if rng:
        text += f' ({rng[0]:.2f}-{rng[1]:.2f})'
    return text


TABLE_COLUMNS = ['model', 'B', 'Params', 'FLOPs', 'infer img/s', 'infer ms/batch',
                 'infer ratio', 'train ms/step', 'train ratio', 'peak train MB', 'mem ratio',
                 'paper Params', 'paper FLOPs', 'paper FPS', 'paper ratio']


def markdown(rows: List[dict], args, info: Dict[str, str], command: str) -> str:
    mode = f"EAN `{args.ean_impl}`" + (' under `torch.compile`' if args.compile else ', eager') \
        + (', bf16 autocast' if args.amp else '')
    out = [f'# EAN speed / memory benchmark ({mode}, {args.img_size}x{args.img_size}, '
           f'{info["device"]})', '']
    out += [f'- {k}: {v}' for k, v in info.items()]
    out += [f'- command: `{command}`',
            f'- settings: rounds {args.rounds} (interleaved), warm-up {args.warmup}, '
            f'{args.iters} iteration(s) per model per round, threads '
            f'{args.threads or "default"}, memory: {args.mem_steps} measured step(s) after '
            f'{max(args.warmup, 1)} warm-up step(s), {args.mem_repeats} fresh process(es) '
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
    if any(r['flops_note'] for r in rows):
        out += ['', '\\* ' + '; '.join(sorted({f"{r['label']}: {r['flops_note']}"
                                                for r in rows if r['flops_note']}))]
    out += ['', '## Targets (EAN vs plain twin)', '']
    out += target_lines(rows) + ['']
    if args.compile:
        out += ['## Compilation (`--compile`)', '',
                f'EAN compile state: {_compile_state()}. First-call times include compilation '
                '(cold inductor cache unless `--keep-compile-cache`); they are warm-up and not '
                'part of the timings above.', '',
                '| model | first infer ms | median infer ms | first train ms | median train ms '
                '| graphs compiled in warm-up | graphs compiled while timing |', '|' + '---|' * 7]
        for row in rows:
            if row['ean_layers']:
                out.append(f"| {row['label']} | {_f(row['first_infer_ms'], '.0f')} | "
                           f"{_f(row['infer_ms'], '.0f')} | {_f(row['first_train_ms'], '.0f')} | "
                           f"{_f(row['train_ms'], '.0f')} | {row['graphs_warmup']} | "
                           f"{row['graphs_timed']} |")
        out += ['']
    if any(row.get('ort_ms') for row in rows):
        out += onnxruntime_lines(rows)
    if any(row.get('profile') for row in rows):
        out += profile_lines(rows, args)
    out += ['## Method', '', METHOD]
    return '\n'.join(out) + '\n'


def onnxruntime_lines(rows: List[dict]) -> List[str]:
    out = ['## onnxruntime inference (the deployment cost)', '',
           'Each model exported to ONNX (detectors as tools/deployment/export_onnx.py exports '
           'them: box decoding and NMS included) and run by onnxruntime on the CPU, same batch, '
           'rounds interleaved as above; PyTorch columns from the table above.', '',
           '| model | B | onnxruntime ms/batch | onnxruntime ratio | PyTorch ms/batch '
           '| PyTorch ratio |', '|' + '---|' * 6]
    for row in rows:
        out.append(f"| {row['label']} | {row['batch']} | {_f(row.get('ort_ms'), '.1f')} | "
                   f"{_ratio_cell(row, 'ort_ratio')} | {_f(row['infer_ms'], '.1f')} | "
                   f"{_ratio_cell(row, 'infer_ratio')} |")
    return out + ['']


def profile_lines(rows: List[dict], args) -> List[str]:
    cats = list(PROFILE_CATEGORIES)
    unit = 'device' if args.device == 'cuda' else 'CPU'
    out = [f'## Profile (torch.profiler, self {unit} time per iteration, ms)', '',
           f'{args.profile} iteration(s) per model and mode after the timed rounds; every '
           'event\'s self time goes to the outermost recognised op around it (EAN = everything '
           'under the EAN autograd function / its backward node, compiled regions included). '
           f'Top-op tables: `{args.name}_profile_<model>_<mode>.txt`.', '',
           '| model | mode | ' + ' | '.join(cats) + ' | total |', '|' + '---|' * (len(cats) + 3)]
    for row in rows:
        for mode, cat_ms in (row.get('profile') or {}).items():
            out.append(f"| {row['label']} | {mode} | " + ' | '.join(
                f'{cat_ms[c]:.1f}' for c in cats) + f' | {sum(cat_ms.values()):.1f} |')
    return out + ['']


#: EAN / plain twin limits: (inference, training step, peak training memory).
TARGETS = {'ResNet-50': (1.05, 1.08, 1.10), 'MobileNeXt': (1.10, 1.12, 1.10)}


def target_lines(rows: List[dict]) -> List[str]:
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


def plot(rows: List[dict], path: str, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    variants = [r for r in rows if r['twin'] is not None]
    keys = [('infer_ratio', 'inference latency', '#4c72b0'),
            ('train_ratio', 'training step', '#dd8452'),
            ('mem_ratio', 'peak training memory', '#55a868'),
            ('paper_ratio', 'paper (1 / FPS, Table 3)', '#bbbbbb')]
    keys = [k for k in keys if any(k[0] in r for r in variants)]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(variants) + 2), 4.5))
    width = 0.8 / max(len(keys), 1)
    for i, (key, label, color) in enumerate(keys):
        xs = [j + (i - (len(keys) - 1) / 2) * width for j in range(len(variants))]
        vals = [r.get(key, float('nan')) for r in variants]
        bars = ax.bar(xs, vals, width, label=label, color=color,
                      hatch='//' if key == 'paper_ratio' else None, edgecolor='white')
        for bar, v in zip(bars, vals):
            if v == v:
                ax.text(bar.get_x() + bar.get_width() / 2, v, f'{v:.2f}', ha='center',
                        va='bottom', fontsize=7)
    ax.axhline(1.0, color='black', linewidth=0.8)
    ax.axhline(1.05, color='#c44e52', linestyle='--', linewidth=0.8, label='1.05x')
    ax.axhline(1.10, color='#8172b3', linestyle=':', linewidth=0.9, label='1.10x')
    ax.set_xticks(range(len(variants)))
    ax.set_xticklabels([f"{r['label']}\n(B={r['batch']})" for r in variants], fontsize=8)
    ax.set_ylabel('variant / plain twin')
    ax.set_ylim(bottom=0.8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=3, loc='upper left')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------ CLI
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='tools/analysis/benchmark.py',
        description='Params, FLOPs, inference throughput, training-step time and peak training '
        'memory of EAN against its plain twin (and SE / CA), interleaved rounds, medians and '
        'ratios; a markdown table and a PNG of the ratios.')
    parser.add_argument('--models', nargs='+', default=DEFAULT_MODELS,
                        help=f'presets ({", ".join(CLASSIFIERS)}) or detector config paths; plain '
                        'twins are added when missing. Default: the paper\'s Table 3 set.')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='batch size for all models (default: 8 for ResNet-50, 16 for '
                        'MobileNeXt, 2 for detectors)')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=10, help='interleaved timing rounds')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed iterations per model and mode before the rounds')
    parser.add_argument('--iters', type=int, default=1,
                        help='iterations per model, mode and round (time = their mean)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--amp', action='store_true', help='under bf16 autocast')
    parser.add_argument('--settings', nargs='+', default=None, metavar='SETTING',
                        help='several runs in one: cpu:<N>t[:bf16] or cuda[:bf16] each, or '
                        '"all" (cpu:1t cpu:2t cpu:2t:bf16, and cuda cuda:bf16 with a GPU); '
                        'default: the one of --device / --threads / --amp')
    parser.add_argument('--ean-impl', choices=IMPLEMENTATIONS, default='auto',
                        help='EAN implementation (default auto: the C++ kernel on CPU, Triton '
                        'on CUDA)')
    parser.add_argument('--compile', action='store_true',
                        help='EAN runs its fused kernels through torch.compile (compile time '
                        'reported separately, excluded from the timings)')
    parser.add_argument('--keep-compile-cache', action='store_true',
                        help='use the default inductor cache (default: a fresh one under '
                        'out-dir, so the reported compile time is a cold compile)')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory probes')
    parser.add_argument('--mem-steps', type=int, default=2,
                        help='measured training steps per memory probe')
    parser.add_argument('--mem-repeats', type=int, default=1,
                        help='fresh processes per model for memory (median)')
    parser.add_argument('--mem-jobs', type=int, default=2,
                        help='memory probes run side by side (they only read memory)')
    parser.add_argument('--no-flops', action='store_true', help='skip FLOPs counting')
    parser.add_argument('--onnxruntime', action='store_true',
                        help='also export every model to ONNX and time it in onnxruntime '
                        '(CPU; needs the deploy extra)')
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='also torch.profiler N inference batches and N training steps of '
                        'every plain and EAN model; tables under out-dir')
    parser.add_argument('--out-dir', default='work_dirs/benchmark')
    parser.add_argument('--name', default=None,
                        help='file stem of the outputs (default: <ean-impl>[-compile])')
    parser.add_argument('--probe', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.name is None:
        args.name = args.ean_impl + ('-compile' if args.compile else '')
    for key in ('rounds', 'iters', 'mem_steps', 'mem_repeats', 'mem_jobs'):
        if getattr(args, key) < 1:
            parser.error(f'--{key.replace("_", "-")} must be >= 1')
    if args.warmup < 0:
        parser.error('--warmup must be >= 0')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device available')
    if args.onnxruntime and (args.amp or args.device == 'cuda' or args.settings):
        parser.error('--onnxruntime times the CPU in float32: use it without --amp, '
                     '--device cuda and --settings')
    try:
        args.settings = parse_settings(args.settings, args)
    except ValueError as err:
        parser.error(str(err))
    return args


SETTING = re.compile(r'^(cpu:(\d+)t|cuda)(:bf16)?$')


def parse_settings(values: Optional[List[str]], args) -> List[dict]:
    """``[{'label', 'device', 'threads', 'amp'}]`` of ``--settings``."""
    if values is None:
        label = f"{args.device}{f':{args.threads}t' if args.threads else ''}" + \
            (':bf16' if args.amp else '')
        return [dict(label=label, device=args.device, threads=args.threads, amp=args.amp)]
    if values == ['all']:
        values = ['cpu:1t', 'cpu:2t', 'cpu:2t:bf16'] + \
            (['cuda', 'cuda:bf16'] if torch.cuda.is_available() else [])
    settings = []
    for value in values:
        m = SETTING.match(value)
        if m is None:
            raise ValueError(f'--settings: {value!r} is not cpu:<N>t[:bf16] or cuda[:bf16]')
        if m.group(1) == 'cuda' and not torch.cuda.is_available():
            raise ValueError(f'--settings {value}: no CUDA device available')
        settings.append(dict(label=value, device='cuda' if m.group(1) == 'cuda' else 'cpu',
                             threads=int(m.group(2)) if m.group(2) else None,
                             amp=bool(m.group(3))))
    return settings


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    args = parse_args(argv)
    if args.probe:
        print(json.dumps(probe_memory(json.loads(args.probe))), flush=True)
        return []
    command = 'python tools/analysis/benchmark.py ' + ' '.join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    os.makedirs(args.out_dir, exist_ok=True)
    if args.compile and args.ean_impl != 'fused':
        log('benchmark: --compile only affects --ean-impl fused; ignored')
    if args.compile and not args.keep_compile_cache:
        cache = osp.abspath(osp.join(args.out_dir, f'{args.name}_inductor_cache'))
        shutil.rmtree(cache, ignore_errors=True)
        os.environ['TORCHINDUCTOR_CACHE_DIR'] = cache  # shared with the memory probes
    specs = resolve(args.models)
    log(f'benchmark: {len(specs)} models: ' + ', '.join(s.label for s in specs))
    all_rows = {}
    for setting in args.settings:
        args.device, args.threads, args.amp = setting['device'], setting['threads'], setting['amp']
        name = args.name if len(args.settings) == 1 else \
            f"{args.name}-{setting['label'].replace(':', '-')}"
        all_rows[setting['label']] = run_setting(specs, args, name, command)
    if len(args.settings) > 1:
        summary = summary_markdown(all_rows, args, command)
        with open(osp.join(args.out_dir, args.name + '.md'), 'w') as f:
            f.write(summary)
        print(summary)
    return [row for rows in all_rows.values() for row in rows]


def run_setting(specs: List[ModelSpec], args, name: str, command: str) -> List[dict]:
    """Every family measured in one setting; the report files ``<out-dir>/<name>.*``."""
    _setup_runtime(args.device, args.threads)
    device = torch.device(args.device)
    info = machine_info(device)
    info['autocast'] = 'bf16' if args.amp else 'off'
    results: Dict[str, Result] = {}
    t0 = time.time()
    families: Dict[str, List[ModelSpec]] = {}
    for spec in specs:
        families.setdefault(spec.family, []).append(spec)
    for members in families.values():
        measure_family(members, args, device, results)
    if not args.no_memory:
        measure_memory(specs, args, results)
    rows = summarize(results)
    info['wall time'] = f'{time.time() - t0:.0f} s'
    text = markdown(rows, args, info, command)
    stem = osp.join(args.out_dir, name)
    with open(stem + '.md', 'w') as f:
        f.write(text)
    with open(stem + '.json', 'w') as f:
        json.dump(dict(info=info, command=command, args=vars(args), rows=rows), f, indent=1)
    title = (f"variant / plain twin, {args.img_size}x{args.img_size}, {info['device']} "
             f"({info['torch threads']} threads{', bf16' if args.amp else ''}), EAN "
             f"{args.ean_impl}{' + torch.compile' if args.compile else ''}")
    plot(rows, stem + '.png', title)
    print(text)
    log(f'benchmark: wrote {stem}.md, {stem}.png, {stem}.json')
    return rows


def summary_markdown(all_rows: Dict[str, List[dict]], args, command: str) -> str:
    """The variant / plain ratios of every setting in one table, with the targets."""
    out = [f'# EAN benchmark summary (EAN `{args.ean_impl}`, {args.img_size}x{args.img_size})',
           '', f'- command: `{command}`', f"- date: {machine_info(torch.device('cpu'))['date']}",
           f'- one report per setting: `{args.name}-<setting>.md`', '',
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
    out += ['', '## Targets', '']
    for label, rows in all_rows.items():
        out += [f'{label}:'] + target_lines(rows) + ['']
    return '\n'.join(out) + '\n'


if __name__ == '__main__':
    main()
