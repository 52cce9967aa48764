"""Speed / memory benchmark: EAN against its plain twin and the SE / CA baselines.

    python tools/analysis/benchmark.py                      # paper Table 3 set, 224x224, CPU
    python tools/analysis/benchmark.py --compile            # EAN's fused kernels compiled
    python tools/analysis/benchmark.py --models ean-r50 --batch-size 8 --rounds 10
    python tools/analysis/benchmark.py --models configs/ssdlite320_ean_mobilenext_coco.py \
        --img-size 320

For every model: Params, FLOPs (mmengine's counter), inference images/s (eval, no_grad),
training-step time (forward + loss + backward + SGD step) and peak training memory (a fresh
process per model). Every attention variant runs in the same invocation as its plain twin,
interleaved round by round; medians and variant / plain ratios are reported in a markdown table
(beside the paper's Table 3 columns) and a PNG bar chart under ``--out-dir``
(default ``work_dirs/benchmark``). See ``ean_mm/utils/benchmark.py`` for the method.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from ean_mm.utils.benchmark import main  # noqa: E402

if __name__ == '__main__':
    main()
