"""EAN's Triton kernels compiled ahead of time for Ampere (sm_80) and Hopper (sm_90) without a
GPU: every variant the launch plans make compiles, with no register spill
(tools/analysis/triton_aot.py; ptxas -v)."""
import re

from conftest import run_tool


def test_every_variant_compiles_for_sm80_and_sm90_without_spills():
    out = run_tool('tools/analysis/triton_aot.py', '--arch', '80', '90', check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith('sm_')]
    from ean_mm.models.layers.ean_triton_aot import variants
    assert len(lines) == 2 * len(list(variants())) == 104
    for line in lines:
        registers = int(re.search(r': (\d+) registers$', line).group(1))
        assert 0 < registers <= 128, line  # at least 4 warps x 128 threads resident per SM
    assert out.stdout.rstrip().endswith('0 with a compile error or spills')


def test_a_spilling_variant_is_reported():
    # one warp holding a 2048-value plane and its gradient: more than 255 registers a thread
    code = ("from ean_mm.models.layers.ean_triton_aot import Variant, compile_variant\n"
            "v = Variant('_backward_rows_kernel', 'float32', (('ROWS', 1), ('BLOCK', 2048), "
            "('ONE_SWEEP', True), ('AFFINE', True)), 1)\n"
            "print(compile_variant(v, 80).spill_bytes)")
    out = run_tool('-c', code, env={'TRITON_INTERPRET': '0'})
    assert int(out.stdout.split()[-1]) > 0
