"""Speed / memory benchmark: EAN against its plain twin and the SE / CA baselines.

    python tools/analysis/benchmark.py                      # paper Table 3 set, 224x224, CPU
    python tools/analysis/benchmark.py --settings all       # CPU 1 and 2 threads, bf16, CUDA
    python tools/analysis/benchmark.py --models ean-r50 --batch-size 8 --rounds 10
    python tools/analysis/benchmark.py --models configs/ssdlite320_ean_mobilenext_coco.py \\
        --img-size 320
    python tools/analysis/benchmark.py --models ean-r50 ean-mx --onnxruntime --openvino \\
        --no-train --no-memory                                # deployment cost
    python tools/analysis/benchmark.py --models ean-r50 --onnxruntime --openvino \\
        --export-forms layernorm instance grouped moments centered   # EAN's ONNX forms compared
    python tools/analysis/benchmark.py --models ean-r50 --threads 1 --onnxruntime --openvino \
        --no-train --profile 5                                # + the runtimes' own profiles

Every attention variant runs in the same invocation as its plain twin, interleaved round by
round; medians and variant / plain ratios go into a markdown table (beside the paper's Table 3
columns), a JSON file and a PNG bar chart under ``--out-dir`` (default ``work_dirs/benchmark``),
one set per setting (device, threads, bf16 autocast) and a summary over the settings.
Method: ``ean_mm.benchmark.METHOD`` (also written into every report); the measuring is
``ean_mm.benchmark``'s.
"""
import argparse
import shlex
import sys
from typing import List, Optional, Sequence

import torch

from ean_mm.benchmark import Options, parse_settings, run_benchmark
from ean_mm.models.layers.ean import IMPLEMENTATIONS
from ean_mm.models.layers.ean_export import EXPORT_FORMS
from ean_mm.paper import CLASSIFIERS


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line; ``settings`` parsed into dicts, ``name`` defaulting to ``ean_impl``."""
    parser = argparse.ArgumentParser(
        prog='tools/analysis/benchmark.py',
        description='Params, FLOPs, inference throughput, training-step time and peak training '
        'memory of EAN against its plain twin (and SE / CA), interleaved rounds, medians and '
        'ratios; a markdown table and a PNG of the ratios.')
    parser.add_argument('--models', nargs='+', default=Options().models,
                        help=f'presets ({", ".join(CLASSIFIERS)}) or detector config paths; plain '
                        'twins are added when missing. Default: the paper\'s Table 3 set.')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='batch size for all models (default: 8 for ResNet-50, 16 for '
                        'MobileNeXt, 2 for detectors)')
    parser.add_argument('--img-size', type=int, default=Options.img_size)
    parser.add_argument('--rounds', type=int, default=Options.rounds,
                        help='interleaved timing rounds')
    parser.add_argument('--warmup', type=int, default=Options.warmup,
                        help='untimed iterations per model and mode before the rounds')
    parser.add_argument('--iters', type=int, default=Options.iters,
                        help='iterations per model, mode and round (time = their mean)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default=Options.device)
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--amp', action='store_true', help='under bf16 autocast')
    parser.add_argument('--settings', nargs='+', default=None, metavar='SETTING',
                        help='several runs in one: cpu:<N>t[:bf16] or cuda[:bf16] each, or '
                        '"all" (cpu:1t cpu:2t cpu:2t:bf16, and cuda cuda:bf16 with a GPU); '
                        'default: the one of --device / --threads / --amp')
    parser.add_argument('--ean-impl', choices=IMPLEMENTATIONS, default=Options.ean_impl,
                        help='EAN implementation (default auto: the C++ kernel on CPU, Triton '
                        'on CUDA)')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory probes')
    parser.add_argument('--no-train', action='store_true',
                        help='time inference only (no training steps)')
    parser.add_argument('--mem-steps', type=int, default=Options.mem_steps,
                        help='measured training steps per memory probe')
    parser.add_argument('--mem-repeats', type=int, default=Options.mem_repeats,
                        help='fresh processes per model for memory (median)')
    parser.add_argument('--mem-jobs', type=int, default=Options.mem_jobs,
                        help='memory probes run side by side (they only read memory)')
    parser.add_argument('--no-flops', action='store_true', help='skip FLOPs counting')
    parser.add_argument('--onnxruntime', action='store_true',
                        help='also export every model to ONNX and time it in onnxruntime '
                        '(CPU; needs the deploy extra)')
    parser.add_argument('--openvino', action='store_true',
                        help='also export every model to ONNX and time it in OpenVINO (CPU '
                        'plugin, float32; needs the deploy extra)')
    parser.add_argument('--export-forms', nargs='+', choices=EXPORT_FORMS, default=None,
                        metavar='FORM',
                        help='with --onnxruntime / --openvino: time EAN models exported in each '
                        f'of these forms ({", ".join(EXPORT_FORMS)}; default: '
                        f'{EXPORT_FORMS[0]} only)')
    parser.add_argument('--profile', type=int, default=Options.profile, metavar='N',
                        help='also torch.profiler N inference batches and N training steps of '
                        'every plain and EAN model (tables under out-dir); with --onnxruntime / '
                        '--openvino, N batches of every exported model under the runtime\'s own '
                        'profiler (times by operator type in the report)')
    parser.add_argument('--out-dir', default=Options.out_dir)
    parser.add_argument('--name', default=None,
                        help='file stem of the outputs (default: <ean-impl>)')
    args = parser.parse_args(argv)
    if args.name is None:
        args.name = args.ean_impl
    for key in ('rounds', 'iters', 'mem_steps', 'mem_repeats', 'mem_jobs'):
        if getattr(args, key) < 1:
            parser.error(f'--{key.replace("_", "-")} must be >= 1')
    if args.warmup < 0:
        parser.error('--warmup must be >= 0')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device available')
    if args.export_forms and not (args.onnxruntime or args.openvino):
        parser.error('--export-forms needs --onnxruntime or --openvino (the runtimes that run '
                     'the forms)')
    try:
        args.settings = parse_settings(args.settings, args.device, args.threads, args.amp)
    except ValueError as err:
        parser.error(str(err))
    if (args.onnxruntime or args.openvino) and any(s['amp'] or s['device'] == 'cuda'
                                                   for s in args.settings):
        parser.error('--onnxruntime and --openvino time the CPU in float32: use them with CPU '
                     'settings without bf16 (e.g. --settings cpu:1t cpu:2t), without --amp and '
                     '--device cuda')
    return args


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    """Run the benchmark of the command line; returns every row."""
    args = parse_args(argv)
    command = 'python tools/analysis/benchmark.py ' + ' '.join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    return run_benchmark(Options(**vars(args)), command)


if __name__ == '__main__':
    main()
