"""The embedded demo: synthetic data -> train an EAN detector -> evaluate -> export -> explain.

    python tools/demo.py [--work-dir work_dirs/demo]

Runs the project's own tools as a user would:

1. ``tools/misc/make_synthetic_data.py`` writes a deterministic shapes data set (COCO layout).
2. ``tools/train.py configs/demo/ssdlite320_ean_mobilenext_shapes.py`` trains SSDLite320 with
   an EAN-MobileNeXt backbone from scratch (the COCO config with only data, schedule and scale
   changed; about 6 minutes on 2 CPU cores).
3. ``tools/test.py`` evaluates the final checkpoint on the val split with mmdet's CocoMetric and
   draws the detections (``--show-dir``).
4. ``tools/deployment/export_onnx.py`` exports the trained detector (NMS included) to
   ``work_dirs/demo/detector.onnx``; ``tools/deployment/onnx_infer.py`` runs it in onnxruntime on
   a few val images (``work_dirs/demo/onnx/``).
5. ``tools/analysis/gradcam.py det`` draws the GradCAM of the top detections on those images
   (``work_dirs/demo/cams/``).

Prints bbox_mAP / AP50 / AP75 and where the images are; exits 1 if bbox_mAP < 0.5.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = 'configs/demo/ssdlite320_ean_mobilenext_shapes.py'
TARGET_MAP = 0.5
NUM_IMAGES_KEPT = 4
NUM_CAM_IMAGES = 3


def run(step: str, args: list, show_all: bool = False) -> str:
    """Run one tool, streaming its progress (mmengine's iteration and metric lines, not its
    environment and config dumps); stop the demo with the step's name if it fails."""
    print(f'\n[demo] {step}\n[demo] $ {" ".join(args)}', flush=True)
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED='1'))  # live progress
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if show_all or any(key in line for key in ('Iter(', 'coco/bbox', 'rror')):
            print(line, end='', flush=True)
    if proc.wait() != 0:
        print(''.join(lines[-40:]), file=sys.stderr)
        raise SystemExit(f'[demo] FAILED at step: {step} (exit {proc.returncode})')
    return ''.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args()
    work_dir = ROOT / args.work_dir
    start = time.time()

    # data/demo/coco/ is where the demo config looks.
    run('generate synthetic data', [
        'tools/misc/make_synthetic_data.py', 'data/demo', '--formats', 'coco', '--num-train', '256',
        '--num-val', '48', '--img-size', '320', '--seed', '0'], show_all=True)
    run('train', ['tools/train.py', CONFIG, '--work-dir', str(work_dir)])
    checkpoint = (work_dir / 'last_checkpoint').read_text().strip()
    log = run('evaluate', ['tools/test.py', CONFIG, checkpoint, '--work-dir', str(work_dir),
                           '--show-dir', 'detections'])

    metrics = dict(re.findall(r'(coco/bbox_mAP(?:_\w+)?): ([\d.]+)', log))
    if 'coco/bbox_mAP' not in metrics:
        raise SystemExit('[demo] FAILED: the evaluation printed no coco/bbox_mAP')
    shown = sorted(work_dir.glob('*/detections/*.jpg'), key=lambda p: p.stat().st_mtime)
    kept = work_dir / 'detections'
    kept.mkdir(exist_ok=True)
    for image in shown[-NUM_IMAGES_KEPT:]:
        shutil.copy(image, kept / image.name)

    val_images = sorted((ROOT / 'data/demo/coco/val2017').glob('*.jpg'))[:NUM_CAM_IMAGES]
    onnx_file = work_dir / 'detector.onnx'
    run('export to ONNX', ['tools/deployment/export_onnx.py', CONFIG, checkpoint, '--out',
                           str(onnx_file)], show_all=True)
    run('detect with onnxruntime', [
        'tools/deployment/onnx_infer.py', str(onnx_file), CONFIG, *map(str, val_images),
        '--out-dir', str(work_dir / 'onnx')], show_all=True)
    run('class activation maps', [
        'tools/analysis/gradcam.py', 'det', CONFIG, checkpoint, *map(str, val_images),
        '--out-dir', str(work_dir / 'cams')],
        show_all=True)

    bbox_map = float(metrics['coco/bbox_mAP'])
    print(f'\n[demo] done in {(time.time() - start) / 60:.1f} min')
    print(f'[demo] bbox_mAP {bbox_map:.3f} | AP50 {float(metrics["coco/bbox_mAP_50"]):.3f} | '
          f'AP75 {float(metrics["coco/bbox_mAP_75"]):.3f}  (val split, {CONFIG})')
    print(f'[demo] checkpoint: {checkpoint}')
    print(f'[demo] detections drawn on {len(shown)} val images; {NUM_IMAGES_KEPT} copied to {kept}')
    print(f'[demo] ONNX file: {onnx_file}; its onnxruntime detections on {len(val_images)} val '
          f'images: {work_dir / "onnx"}')
    print(f'[demo] GradCAMs of the top detections on those images: {work_dir / "cams"}')
    if bbox_map < TARGET_MAP:
        raise SystemExit(f'[demo] bbox_mAP {bbox_map:.3f} is below the target {TARGET_MAP}')


if __name__ == '__main__':
    main()
