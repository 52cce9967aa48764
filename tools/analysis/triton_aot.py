"""Compile every EAN Triton kernel variant ahead of time for GPU architectures, without a GPU,
and print registers and spills (``ptxas -v``); exit status 1 on a compile error or a spill.

    python tools/analysis/triton_aot.py [--arch 80 90] [--jobs 2]
"""
import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Optional, Sequence


def _compile(job):
    from ean_mm.models.layers.ean_triton_aot import compile_variant
    variant, capability = job
    try:
        return compile_variant(variant, capability), None
    except Exception as err:  # reported per variant, the others still compile
        return (variant, capability), f'{type(err).__name__}: {err}'.splitlines()[0]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', nargs='+', type=int, default=[80, 90],
                        help='compute capabilities, e.g. 80 (A100) 90 (H100)')
    parser.add_argument('--jobs', type=int, default=os.cpu_count() or 1,
                        help='compile processes')
    args = parser.parse_args(argv)
    from ean_mm.models.layers.ean_triton_aot import variants
    jobs = [(v, cap) for cap in args.arch for v in variants()]
    failed = 0
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for result, error in pool.map(_compile, jobs):
            if error:
                variant, cap = result
                print(f'sm_{cap} {variant}: COMPILE ERROR {error}')
                failed += 1
                continue
            spill = f'  SPILLS {result.spill_bytes} B' if result.spill_bytes else ''
            print(f'sm_{result.capability} {result.variant}: {result.registers} registers{spill}')
            failed += bool(result.spill_bytes)
    print(f'{len(jobs)} variants compiled for sm_{", sm_".join(map(str, args.arch))}: '
          f'{failed} with a compile error or spills')
    return 1 if failed else 0


if __name__ == '__main__':
    # The kernels must be JIT functions, not interpreted; set here, not at import, so that loading
    # this file (tests/test_docs.py reads its parser) leaves the importer's environment alone.
    os.environ.pop('TRITON_INTERPRET', None)
    sys.exit(main())
