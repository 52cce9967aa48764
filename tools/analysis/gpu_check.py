"""Check ean_mm on a GPU machine in one command (under 8 minutes on one H100-class GPU).

    python tools/analysis/gpu_check.py [--work-dir work_dirs/gpu_check] [--iters 5]
        [--rounds 10] [--batch-sizes 2 16]

1. environment: torch, CUDA, the GPU, Triton, mmcv's compiled CUDA version, ean_mm._C;
2. kernels: ``tests/test_ean_kernels.py`` (on a GPU every backend on CUDA tensors, the Triton
   kernels JIT-compiled for it; without one, interpreted) and ``tests/test_triton_aot.py``
   (every Triton variant ahead of time for sm_80 and sm_90, no spills);
3. mmcv's CUDA ops: ``nms`` and ``roi_align`` on CUDA tensors against their CPU results;
4. training: ``tools/train.py`` of Faster R-CNN-EAN-R50 and SSDLite-EAN-MobileNeXt for
   ``--iters`` iterations with ``--amp`` on generated COCO data, the configs' own input sizes;
5. benchmark: ``tools/analysis/benchmark.py --models ean-r50 ean-mx --settings cuda cuda:bf16``
   at each of ``--batch-sizes``: forward, training step and peak memory, EAN / plain ratios
   (its tables under ``<work-dir>/benchmark``).

Without a GPU steps 3-5 say so and are skipped, 1 and 2 run. Prints a summary of the steps with
their times; exit status 1 when a step failed.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[2]
DETECTORS = ('configs/faster_rcnn_ean_r50_coco.py', 'configs/ssdlite320_ean_mobilenext_coco.py')
CLASSES = ('person', 'bicycle', 'car')  # COCO names: the configs' label space


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/gpu_check')
    parser.add_argument('--iters', type=int, default=5, help='training iterations a detector')
    parser.add_argument('--rounds', type=int, default=10, help='benchmark timing rounds')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[2, 16],
                        help='benchmark batch sizes (2: the detectors\' per GPU; 16: classifiers)')
    return parser.parse_args(argv)


class Steps:
    """Runs the steps, streaming their output, and keeps ``(name, status, seconds)``."""

    def __init__(self) -> None:
        self.done: List[tuple] = []

    def run(self, name: str, args: List[str], env: Optional[dict] = None) -> bool:
        print(f'\n[gpu_check] {name}\n[gpu_check] $ {" ".join(args)}', flush=True)
        start = time.time()
        proc = subprocess.run(args, cwd=ROOT, env=dict(os.environ, **(env or {})))
        ok = proc.returncode == 0
        self.done.append((name, 'ok' if ok else f'FAILED (exit {proc.returncode})',
                          time.time() - start))
        return ok

    def skip(self, name: str, why: str) -> None:
        print(f'\n[gpu_check] {name}: skipped, {why}', flush=True)
        self.done.append((name, f'skipped: {why}', 0.0))

    def summary(self) -> bool:
        print('\n[gpu_check] summary')
        for name, status, seconds in self.done:
            print(f'  {name:<52} {status:<40} {seconds:6.0f} s')
        return all(not status.startswith('FAILED') for _, status, _ in self.done)


def environment() -> dict:
    import torch
    import triton
    info = {'torch': torch.__version__, 'CUDA (torch)': torch.version.cuda,
            'Triton': triton.__version__,
            'GPU': torch.cuda.get_device_name() if torch.cuda.is_available() else 'none visible'}
    try:
        from mmcv.ops import get_compiling_cuda_version
        info['mmcv CUDA ops'] = get_compiling_cuda_version()
    except ImportError as err:
        info['mmcv CUDA ops'] = f'mmcv.ops does not import: {err}'
    from ean_mm.models.layers.ean_ops import cpp_available
    info['ean_mm._C'] = 'built' if cpp_available() else 'not built'
    return info


MMCV_CHECK = '''
import torch
from mmcv.ops import nms, roi_align
g = torch.Generator().manual_seed(0)
xy = torch.rand(500, 2, generator=g) * 200
boxes = torch.cat([xy, xy + 4 + torch.rand(500, 2, generator=g) * 60], 1)
scores = torch.rand(500, generator=g)
assert torch.equal(nms(boxes, scores, 0.5)[1], nms(boxes.cuda(), scores.cuda(), 0.5)[1].cpu())
feats = torch.rand(2, 16, 64, 64, generator=g)
rois = torch.cat([torch.randint(0, 2, (64, 1), generator=g).float(), boxes[:64] / 4], 1)
cpu = roi_align(feats, rois, (7, 7), 1.0, 2, 'avg', True)
torch.testing.assert_close(roi_align(feats.cuda(), rois.cuda(), (7, 7), 1.0, 2, 'avg', True).cpu(),
                           cpu, rtol=1e-4, atol=1e-5)
print('nms and roi_align on CUDA match the CPU')
'''


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import torch
    from mmengine.config import Config

    from ean_mm.utils.short_run import short_run_options
    work = (ROOT / args.work_dir).resolve()
    py = sys.executable
    gpu = torch.cuda.is_available()
    print('[gpu_check] ' + ' | '.join(f'{k}: {v}' for k, v in environment().items()))
    steps = Steps()
    steps.run('kernels: tests/test_ean_kernels.py' + ('' if gpu else ' (Triton interpreted)'),
              [py, '-m', 'pytest', '-q', 'tests/test_ean_kernels.py'])
    steps.run('kernels: ahead-of-time compile, sm_80 + sm_90',
              [py, '-m', 'pytest', '-q', 'tests/test_triton_aot.py'])
    if not gpu:
        for name in ('mmcv CUDA ops', 'training with --amp', 'benchmark on CUDA'):
            steps.skip(name, 'no GPU visible')
        return 0 if steps.summary() else 1
    cuda_ops = environment()['mmcv CUDA ops']
    if cuda_ops.startswith(('not available', 'mmcv.ops')):
        steps.skip('mmcv CUDA ops', f'mmcv has no CUDA ops ({cuda_ops}): FORCE_CUDA=1 make setup')
    else:
        steps.run('mmcv CUDA ops: nms, roi_align', [py, '-c', MMCV_CHECK])
    data = work / 'data'
    if steps.run('generated COCO data', [
            py, 'tools/misc/make_synthetic_data.py', str(data), '--formats', 'coco',
            '--num-train', str(4 * max(2, args.iters)), '--num-val', '2', '--img-size', '640',
            '--classes', *CLASSES]) and not cuda_ops.startswith(('not available', 'mmcv.ops')):
        for config in DETECTORS:
            opts = short_run_options(Config.fromfile(str(ROOT / config)), str(data / 'coco'),
                                     iters=args.iters, batch_size=2, validate=False)
            steps.run(f'train {Path(config).stem} --amp, {args.iters} iterations',
                      [py, 'tools/train.py', config, '--amp', '--work-dir',
                       str(work / Path(config).stem), '--cfg-options', *opts])
    for batch in args.batch_sizes:
        steps.run(f'benchmark batch {batch}: EAN / plain, fp32 and bf16', [
            py, 'tools/analysis/benchmark.py', '--models', 'ean-r50', 'ean-mx', '--settings',
            'cuda', 'cuda:bf16', '--batch-size', str(batch), '--rounds', str(args.rounds),
            '--no-flops', '--out-dir', str(work / 'benchmark'), '--name', f'cuda_b{batch}'])
    return 0 if steps.summary() else 1


if __name__ == '__main__':
    sys.exit(main())
