"""EAN's Triton kernels compiled ahead of time, without a GPU: every variant the launch plans of
:mod:`.ean_triton` make and the ``K``-vector kernels (:mod:`.ean_vectors_triton`, each
``omega`` form), for a GPU architecture (``triton.compile`` with a ``GPUTarget``),
with the registers and spills ``ptxas -v`` reports.

Variants: each kernel, for each input dtype the kernels take, with ``AFFINE`` on and off and, for
the row kernels, one sweep and two; at the largest tile a plan gives (the most registers),
with ``M`` not a multiple of 16 (scalar loads, the most registers), pointers 16-byte aligned.
Needs the kernels as JIT functions: run it in a process without ``TRITON_INTERPRET=1``.
"""
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterator, Tuple

import triton

from . import ean_triton as kernels
from . import ean_vectors_triton

__all__ = ['Variant', 'Compiled', 'variants', 'compile_variant']

_DTYPES = {'float32': 'fp32', 'float16': 'fp16', 'bfloat16': 'bf16'}
# Arguments that hold the input's dtype; every other pointer is float32.
_DATA_POINTERS = ('x_ptr', 'y_ptr', 'gy_ptr', 'gu_ptr')
_INTS = ('P', 'C', 'K', 'M', 'CHUNK', 'S')
# Largest K-vector block: K = C/G is at most 160 in the networks here (MobileNeXt 1280 / 8).
_VECTOR_BLOCK = 256


@dataclass(frozen=True)
class Variant:
    """One compiled form of a kernel: its name, the input dtype, its constexpr values and
    warps."""
    kernel: str
    dtype: str
    constexprs: Tuple[Tuple[str, object], ...]
    num_warps: int

    def __str__(self) -> str:
        flags = ' '.join(f'{k}={v}' for k, v in self.constexprs)
        return f'{self.kernel} {self.dtype} {flags} warps={self.num_warps}'


@dataclass(frozen=True)
class Compiled:
    variant: Variant
    capability: int
    registers: int
    spill_bytes: int


def variants() -> Iterator[Variant]:
    one = kernels.plan(1 << 16, kernels.ONE_SWEEP_MAX)  # the largest one-sweep tile
    two = kernels.plan(1 << 16, kernels.ONE_SWEEP_MAX + 1)
    split = kernels.plan(1, 1 << 20)
    sp = triton.next_power_of_2(kernels.MAX_SPLIT)
    for dtype in _DTYPES:
        for affine in (False, True):
            for p in (one, two):
                common = (('ROWS', p.rows), ('BLOCK', p.block), ('ONE_SWEEP', p.one_sweep),
                          ('AFFINE', affine))
                yield Variant('_forward_rows_kernel', dtype, common, p.num_warps)
                yield Variant('_backward_rows_kernel', dtype, common, p.num_warps)
            yield Variant('_forward_apply_kernel', dtype,
                          (('SP', sp), ('BLOCK', split.block), ('AFFINE', affine)),
                          split.num_warps)
            yield Variant('_backward_partial_kernel', dtype,
                          (('BLOCK', split.block), ('AFFINE', affine)), split.num_warps)
            yield Variant('_backward_apply_kernel', dtype,
                          (('SP', sp), ('BLOCK', split.block), ('AFFINE', affine)),
                          split.num_warps)
        yield Variant('_forward_partial_kernel', dtype, (('BLOCK', split.block), ),
                      split.num_warps)
    for omega in range(3):  # ean_omega.OMEGA_FORMS
        for name in ('_vectors_kernel', '_vectors_backward_kernel'):
            yield Variant(name, 'float32', (('OMEGA', omega), ('BK', _VECTOR_BLOCK)), 4)
    yield Variant('_frozen_affine_kernel', 'float32',
                  (('BLOCK', ean_vectors_triton.AFFINE_BLOCK), ), 4)


def _signature(fn, dtype: str, constexprs: Dict[str, object]) -> Dict[str, str]:
    sig = {}
    for name in fn.arg_names:
        if name in constexprs:
            sig[name] = 'constexpr'
        elif name.endswith('_ptr'):
            sig[name] = '*' + (_DTYPES[dtype] if name in _DATA_POINTERS else 'fp32')
        elif name in _INTS:
            sig[name] = 'i32'
        else:
            sig[name] = 'fp32'
    return sig


def compile_variant(variant: Variant, capability: int) -> Compiled:
    """Compile ``variant`` for ``sm_<capability>`` (e.g. 80, 90); raises on a compile error."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    fn = getattr(kernels, variant.kernel, None) or getattr(ean_vectors_triton, variant.kernel)
    if not isinstance(fn, triton.runtime.JITFunction):
        raise RuntimeError('EAN ahead-of-time compile: the kernels are interpreted '
                           '(TRITON_INTERPRET=1); run it in a process without it')
    constexprs = dict(variant.constexprs)
    sig = _signature(fn, variant.dtype, constexprs)
    aligned = {(i, ): [['tt.divisibility', 16]] for i, name in enumerate(fn.arg_names)
               if sig[name].startswith('*')}
    source = ASTSource(fn, sig, constexprs=constexprs, attrs=aligned)
    compiled = triton.compile(source, target=GPUTarget('cuda', capability, 32),
                              options={'num_warps': variant.num_warps})
    registers, spills = _ptxas_usage(compiled.asm['ptx'], capability)
    return Compiled(variant, capability, registers, spills)


def _ptxas_usage(ptx: str, capability: int) -> Tuple[int, int]:
    """``(registers, spill bytes)`` of the PTX's one kernel, from ``ptxas -v``."""
    from triton.backends.nvidia.compiler import get_ptxas
    ptxas = get_ptxas(capability).path
    arch = f'sm_{capability}a' if capability >= 90 else f'sm_{capability}'
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'kernel.ptx')
        with open(path, 'w') as f:
            f.write(ptx)
        out = subprocess.run([ptxas, '-v', '--gpu-name', arch, path, '-o', os.devnull],
                             capture_output=True, text=True, check=True).stderr
    registers = int(re.search(r'Used (\d+) registers', out).group(1))
    spills = sum(int(n) for n in re.findall(r'(\d+) bytes spill (?:stores|loads)', out))
    return registers, spills

