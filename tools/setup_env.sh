#!/usr/bin/env bash
# Create or reuse the virtual environment at <repo>/.venv and install ean_mm's pinned stack.
#
# Idempotent: every step checks first and skips what is already installed, so a second run
# takes seconds. A failed step stops the script with a message naming the step.
#
#   torch 2.13.0 + torchvision 0.28.0   (kept if the base Python already has a working pair)
#   mmengine 0.10.7, mmcv 2.1.0 (with compiled ops), mmdet 3.3.0, mmpretrain 1.2.0, pytest
#   ean_mm (editable) and its CPU kernels ean_mm._C (compiled here)
#   grad-cam (extra [cam]); onnx, onnxscript, onnxruntime (extra [deploy]);
#   psutil, seaborn (extra [analysis]: mmdet's own analysis tools import them)
#   openmim 0.3.9 with --no-deps and what it imports (extra [mim]: mim search / train / test)
#
# Environment: PYTHON (base interpreter, default python3), PIP_FIND_LINKS (respected, e.g. a
# folder holding a prebuilt mmcv wheel), MAX_JOBS (parallel compile jobs for mmcv's ops);
# FORCE_CUDA=1 (mmcv with CUDA ops without a visible GPU), TORCH_CUDA_ARCH_LIST (the GPU
# architectures to build for; default: the visible GPUs'), CUDA_HOME (the CUDA toolkit), see
# tools/build_mmcv_cuda.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
BASE_PYTHON="${PYTHON:-python3}"

TORCH_PIN="torch===2.13.0"          # '===': the plain CUDA-enabled build, never a '+cpu' local wheel
TORCHVISION_PIN="torchvision==0.28.0"
MMCV_VERSION="2.1.0"
PINS=("mmengine==0.10.7" "mmdet==3.3.0" "mmpretrain==1.2.0" "pytest")
# The optional extras (setup.py): [cam] for tools/analysis/gradcam.py, [deploy] for
# tools/deployment (ONNX export, onnxruntime and OpenVINO), and their tests; [analysis] for mmdet's
# tools/analysis_tools (benchmark.py imports psutil, analyze_logs.py seaborn; mmdet's package
# does not require them).
EXTRAS=("grad-cam==1.5.7" "onnx==1.23.2" "onnxscript==0.7.2" "onnxruntime==1.32.0"
        "openvino==2026.4.1" "psutil==7.2.2" "seaborn==0.13.2")

log() { printf '[setup_env] %s\n' "$*"; }
current_step="start"
trap 'rc=$?; if [ $rc -ne 0 ]; then printf "[setup_env] FAILED at step: %s (exit %d). Fix the error above and run again.\n" "$current_step" "$rc" >&2; fi' EXIT
step() { current_step="$1"; log "$1"; }

pip_install() { "$PY" -m pip install --disable-pip-version-check "$@"; }
have() { "$PY" - "$@" <<'PYEOF'
# exit 0 when every 'name==version' (or bare name) argument is installed as pinned
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, _, want = spec.replace('===', '==').partition('==')
    try:
        got = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if want and got.split('+')[0] != want:
        sys.exit(1)
PYEOF
}

step "create virtual environment at .venv"
if [ ! -x "$PY" ]; then
    # A base Python that already runs torch + torchvision lends them to the venv.
    if "$BASE_PYTHON" -c "import torch, torchvision" >/dev/null 2>&1; then
        log "base Python has a working torch + torchvision: the venv will see them"
        "$BASE_PYTHON" -m venv --system-site-packages "$VENV"
    else
        "$BASE_PYTHON" -m venv "$VENV"
    fi
fi

step "install torch 2.13.0 + torchvision 0.28.0"
if "$PY" -c "import torch, torchvision" >/dev/null 2>&1; then
    log "working torch $("$PY" -c 'import torch; print(torch.__version__)') + torchvision already present: kept"
else
    pip_install "$TORCH_PIN" "$TORCHVISION_PIN"
    "$PY" -c "import torch, torchvision" || { echo "torchvision does not import with this torch" >&2; exit 1; }
fi

step "install build tools for mmcv (setuptools<81, wheel)"
"$PY" - <<'PYEOF' || pip_install "setuptools<81" wheel
import sys
from importlib.metadata import PackageNotFoundError, version
try:  # exit 1 (install them) without a stack dump when either is missing or too new
    sys.exit(0 if int(version('setuptools').split('.')[0]) < 81 and version('wheel') else 1)
except PackageNotFoundError:
    sys.exit(1)
PYEOF

step "install mmengine, mmdet, mmpretrain, pytest"
have "${PINS[@]}" || pip_install "${PINS[@]}"

step "install the optional extras [cam], [deploy] and [analysis]: grad-cam, onnx, onnxscript, onnxruntime, psutil, seaborn"
have "${EXTRAS[@]}" || pip_install "${EXTRAS[@]}"

step "install openmim 0.3.9 and the extra [mim]: model-index, click<8.3, pandas, requests, ..."
# Kept in step with setup.py's [mim]. openmim goes in with --no-deps: its requirement opendatalab
# pulls openxlab, whose pins (setuptools~=60.2, requests~=2.28, ...) pip would downgrade the
# stack to; mim never imports either. click<8.3: see setup.py.
MIM_DEPS=("model-index==0.1.11" "click>=8,<8.3" "pandas" "requests" "rich" "tabulate" "colorama")
"$PY" - <<'PYEOF' || pip_install "${MIM_DEPS[@]}"
import sys
from importlib.metadata import PackageNotFoundError, version
try:  # exit 1 (install them) without a stack dump when one is missing or click is too new
    ok = version('model-index') == '0.1.11' and (8, 0) <= tuple(
        int(p) for p in version('click').split('.')[:2]) < (8, 3)
    for name in ('pandas', 'requests', 'rich', 'tabulate', 'colorama'):
        version(name)
except PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
PYEOF
have "openmim==0.3.9" || pip_install --no-deps "openmim==0.3.9"

step "install mmcv $MMCV_VERSION with compiled ops"
# On a machine with a visible GPU (or with FORCE_CUDA=1) mmcv is built from source with its CUDA
# ops (tools/build_mmcv_cuda.sh: CUDA toolkit, architectures, the build, a check on the
# GPU); elsewhere with CPU ops, or taken from a wheel in PIP_FIND_LINKS.
if [ "${FORCE_CUDA:-0}" = "1" ] || "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    if have "mmcv==$MMCV_VERSION" && "$PY" -c "import sys; from mmcv.ops import get_compiling_cuda_version as v; sys.exit(v() == 'not available')" 2>/dev/null; then
        log "mmcv $MMCV_VERSION with CUDA ops already present: kept"
    else
        PY="$PY" MMCV_VERSION="$MMCV_VERSION" bash "$ROOT/tools/build_mmcv_cuda.sh"
    fi
elif ! (have "mmcv==$MMCV_VERSION" && "$PY" -c "import mmcv.ops" >/dev/null 2>&1); then
    log "uses a wheel from PIP_FIND_LINKS when one matches, otherwise compiles (about 17 min on 2 cores)"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        pip_install --no-build-isolation "mmcv==$MMCV_VERSION"
    "$PY" -c "from mmcv.ops import nms, roi_align" \
        || { echo "mmcv $MMCV_VERSION installed without its compiled ops" >&2; exit 1; }
fi

step "install ean_mm (editable)"
have ean_mm || pip_install --no-deps --no-build-isolation -e "$ROOT"

step "build ean_mm's CPU kernels (ean_mm._C)"
# Rebuilt when missing or older than its source; a machine without a C++ compiler goes on
# without it (EAN then runs on PyTorch ops on CPU, slower, and says so once).
if ! "$PY" - "$ROOT" <<'PYEOF'
import glob, os, sys
root = sys.argv[1]
built = glob.glob(os.path.join(root, 'ean_mm', '_C*.so'))
sources = glob.glob(os.path.join(root, 'ean_mm', 'csrc', '*'))
newest = max(os.path.getmtime(p) for p in sources + [os.path.join(root, 'setup.py')])
sys.exit(0 if built and os.path.getmtime(built[0]) >= newest else 1)
PYEOF
then
    log "compiling (about 2 min on 2 cores)"
    (cd "$ROOT" && "$PY" setup.py -q build_ext --inplace) || true
fi
"$PY" -c "import ean_mm._C" 2>/dev/null \
    || log "WARNING: ean_mm._C is not built (no C++ compiler?): EAN runs on PyTorch ops on CPU, slower"

step "check imports"
"$PY" -c "import ean_mm, mmdet, mmpretrain, mmcv.ops; print('ean_mm', ean_mm.__version__, '| mmdet', mmdet.__version__, '| mmpretrain', mmpretrain.__version__)"
current_step="done"
log "ready: $VENV"
