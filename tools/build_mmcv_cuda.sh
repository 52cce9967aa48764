#!/usr/bin/env bash
# Build and install mmcv (default 2.1.0) with its CUDA ops into the interpreter $PY (default
# .venv/bin/python), for the torch installed there. Run by tools/setup_env.sh on a machine with
# a visible GPU or with FORCE_CUDA=1; on its own:
#
#   [CUDA_HOME=/usr/local/cuda] [TORCH_CUDA_ARCH_LIST="8.0;9.0"] bash tools/build_mmcv_cuda.sh
#
# 1. CUDA toolkit: $CUDA_HOME, /usr/local/cuda or `nvcc` on PATH, when its major version is
#    torch's (torch.version.cuda); otherwise (or with MMCV_CUDA_TOOLKIT=registry) nvcc from the
#    package registry, same major.minor as torch (nvidia-cuda-nvcc, -nvvm, -crt, -cccl,
#    -runtime) into <venv>/cuda-toolkit.
# 2. Architectures: $TORCH_CUDA_ARCH_LIST, else the visible GPUs'. CUDA 13 builds sm_75 and up.
# 3. mmcv's source release from the registry, built with FORCE_CUDA=1 MMCV_WITH_OPS=1 in
#    <venv>/mmcv-build (kept: a rerun resumes the compile). Its sources need no change for
#    CUDA 13.0 and torch 2.13 (built whole here, sm_80 + sm_90, 2026-12-05); what the build
#    needed was torch's CUDA library headers (step 1). Upstream reports of CUDA 13 build
#    failures: open-mmlab/mmcv #3308, #3310.
# 4. mmcv's nms and roi_align run on a CUDA tensor against their CPU results, or the script
#    says why they cannot run here (no GPU visible).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
MMCV_VERSION="${MMCV_VERSION:-2.1.0}"
VENV="$(cd "$(dirname "$PY")/.." && pwd)"
log() { printf '[build_mmcv_cuda] %s\n' "$*"; }
fail() { printf '[build_mmcv_cuda] ERROR: %s\n' "$*" >&2; exit 1; }

TORCH_CUDA="$("$PY" -c "import torch; print(torch.version.cuda or '')")"
[ -n "$TORCH_CUDA" ] || fail "torch $("$PY" -c 'import torch; print(torch.__version__)') is a CPU-only build: install torch's CUDA build (tools/setup_env.sh: torch===2.13.0) first"
TORCH_MAJOR="${TORCH_CUDA%%.*}"

# ---------------------------------------------------------------- 1. the CUDA toolkit
nvcc_release() { "$1" --version 2>/dev/null | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p'; }
# the toolkit an nvcc belongs to, as nvcc itself says (a wrapper script on PATH is not its home)
nvcc_home() { "$1" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1; }
CUDA_HOME_FOUND=""
if [ "${MMCV_CUDA_TOOLKIT:-}" != "registry" ]; then
    for nvcc in "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" /usr/local/cuda/bin/nvcc "$(command -v nvcc || true)"; do
        [ -n "$nvcc" ] && [ -x "$nvcc" ] || continue
        release="$(nvcc_release "$nvcc")"
        if [ "${release%%.*}" = "$TORCH_MAJOR" ]; then
            CUDA_HOME_FOUND="$(cd "$(nvcc_home "$nvcc")" && pwd)"
            log "CUDA toolkit $release at $CUDA_HOME_FOUND (torch: CUDA $TORCH_CUDA)"
            break
        fi
        log "skipping $nvcc: CUDA ${release:-?}, torch needs CUDA $TORCH_MAJOR.x"
    done
fi
if [ -z "$CUDA_HOME_FOUND" ]; then
    TOOLKIT="$VENV/cuda-toolkit"
    CUDA_HOME_FOUND="$TOOLKIT/nvidia/cu$TORCH_MAJOR"
    if [ ! -x "$CUDA_HOME_FOUND/bin/nvcc" ]; then
        # the runtime headers and libcudart of torch's own CUDA runtime, not the newest
        runtime="$("$PY" -c "from importlib.metadata import version; print(version('nvidia-cuda-runtime'))" 2>/dev/null || echo "$TORCH_CUDA.*")"
        log "nvcc $TORCH_CUDA from the package registry into $TOOLKIT"
        "$PY" -m pip install --disable-pip-version-check -q --no-deps --target "$TOOLKIT" \
            "nvidia-cuda-nvcc==$TORCH_CUDA.*" "nvidia-nvvm==$TORCH_CUDA.*" \
            "nvidia-cuda-crt==$TORCH_CUDA.*" "nvidia-cuda-cccl==$TORCH_CUDA.*" \
            "nvidia-cuda-runtime==$runtime"
    fi
    # nvcc runs ../nvvm/bin/cicc; torch's extension builder links -lcudart from lib64
    [ -x "$CUDA_HOME_FOUND/nvvm/bin/cicc" ] || fail "$CUDA_HOME_FOUND/nvvm/bin/cicc missing (nvidia-nvvm)"
    [ -e "$CUDA_HOME_FOUND/lib64" ] || ln -s lib "$CUDA_HOME_FOUND/lib64"
    [ -e "$CUDA_HOME_FOUND/lib/libcudart.so" ] || ln -s "libcudart.so.$TORCH_MAJOR" "$CUDA_HOME_FOUND/lib/libcudart.so"
    log "CUDA toolkit $(nvcc_release "$CUDA_HOME_FOUND/bin/nvcc") at $CUDA_HOME_FOUND"
fi
export CUDA_HOME="$CUDA_HOME_FOUND" PATH="$CUDA_HOME_FOUND/bin:$PATH"
# torch's CUDA headers include those of cuSPARSE, cuBLAS, cuSOLVER (ATen/cuda/CUDAContextLight.h);
# a toolkit without them (the registry's nvcc, a minimal install) takes the ones torch's own
# nvidia-* wheels ship, beside their libraries
if [ ! -f "$CUDA_HOME/include/cusparse.h" ]; then
    TORCH_CUDA_INCLUDE="$("$PY" -c "
import os, torch
print(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), 'nvidia', 'cu$TORCH_MAJOR', 'include'))")"
    [ -f "$TORCH_CUDA_INCLUDE/cusparse.h" ] || fail "cusparse.h is neither in $CUDA_HOME/include nor in $TORCH_CUDA_INCLUDE: install the CUDA toolkit's library headers"
    log "library headers (cusparse.h, cublas_v2.h, ...) from $TORCH_CUDA_INCLUDE"
    export CPATH="$TORCH_CUDA_INCLUDE${CPATH:+:$CPATH}"
    export MMCV_CUDA_ARGS="${MMCV_CUDA_ARGS:+$MMCV_CUDA_ARGS }-I$TORCH_CUDA_INCLUDE"
fi

# ---------------------------------------------------------------- 2. architectures
if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
    TORCH_CUDA_ARCH_LIST="$("$PY" -c "
import torch
caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}) \
    if torch.cuda.is_available() else []
print(';'.join(f'{a}.{b}' for a, b in caps))")"
    [ -n "$TORCH_CUDA_ARCH_LIST" ] || fail "no GPU visible: set TORCH_CUDA_ARCH_LIST to the GPUs to build for, e.g. TORCH_CUDA_ARCH_LIST=\"8.0;9.0\" (A100, H100)"
    log "architectures of the visible GPUs: $TORCH_CUDA_ARCH_LIST"
fi
for arch in ${TORCH_CUDA_ARCH_LIST//;/ }; do
    major="${arch%%.*}"; minor="${arch#*.}"; minor="${minor%%[^0-9]*}"
    if [ "$TORCH_MAJOR" -ge 13 ] && [ $((major * 10 + minor)) -lt 75 ]; then
        fail "CUDA $TORCH_CUDA builds sm_75 and newer; TORCH_CUDA_ARCH_LIST has $arch"
    fi
done
export TORCH_CUDA_ARCH_LIST

# ---------------------------------------------------------------- 3. source, build
BUILD="$VENV/mmcv-build"
SRC="$BUILD/mmcv-$MMCV_VERSION"
if [ ! -f "$SRC/setup.py" ]; then
    mkdir -p "$BUILD"
    log "mmcv $MMCV_VERSION source release from the package registry"
    "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-binary mmcv \
        --no-build-isolation -d "$BUILD" "mmcv==$MMCV_VERSION"
    tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
fi
log "compiling mmcv's CPU and CUDA ops for $TORCH_CUDA_ARCH_LIST (MAX_JOBS=${MAX_JOBS:-$(nproc)}; long: 58 CUDA files, each compiled once per architecture; 48 min for two on 2 cores)"
start=$(date +%s)
export FORCE_CUDA=1 MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}"
# compiled by setup.py itself first: pip removes the build folder when a build fails, and a
# rerun then starts over; its wheel build afterwards finds the objects up to date
(cd "$SRC" && "$PY" setup.py -q build_ext)
log "compiled in $(( ($(date +%s) - start) / 60 )) min"
(cd "$SRC" && "$PY" -m pip install --disable-pip-version-check --no-build-isolation --no-deps \
    --force-reinstall .)
log "built and installed in $(( ($(date +%s) - start) / 60 )) min"

# ---------------------------------------------------------------- 4. the check
"$PY" - <<'PYEOF'
import torch
from mmcv.ops import get_compiling_cuda_version, nms, roi_align

built = get_compiling_cuda_version()
if built == 'not available':
    raise SystemExit('[build_mmcv_cuda] ERROR: mmcv was built without CUDA ops')
print(f'[build_mmcv_cuda] mmcv compiled with CUDA {built}')
if not torch.cuda.is_available():
    print('[build_mmcv_cuda] no GPU visible here: nms and roi_align were not run on a CUDA '
          'tensor (run this script or tools/analysis/gpu_check.py where a GPU is)')
    raise SystemExit(0)
gen = torch.Generator().manual_seed(0)
xy = torch.rand(200, 2, generator=gen) * 100
boxes = torch.cat([xy, xy + 5 + torch.rand(200, 2, generator=gen) * 30], 1)
scores = torch.rand(200, generator=gen)
_, keep_cpu = nms(boxes, scores, 0.5)
_, keep_gpu = nms(boxes.cuda(), scores.cuda(), 0.5)
assert torch.equal(keep_cpu, keep_gpu.cpu()), 'nms on CUDA differs from the CPU result'
feats = torch.rand(2, 8, 32, 32, generator=gen)
rois = torch.cat([torch.tensor([[0.], [1.], [1.]]), boxes[:3] / 4], 1)
cpu = roi_align(feats, rois, (7, 7), 1.0, 2, 'avg', True)
gpu = roi_align(feats.cuda(), rois.cuda(), (7, 7), 1.0, 2, 'avg', True)
torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)
print(f'[build_mmcv_cuda] nms and roi_align on {torch.cuda.get_device_name()}: match the CPU')
PYEOF
