import os
import warnings

from setuptools import find_packages, setup


def get_version() -> str:
    scope: dict = {}
    with open('ean_mm/version.py', encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


def cpu_extension():
    """``ean_mm._C``, EAN's CPU kernels, or ``None`` where torch's build tools are missing
    (ean_mm then runs its PyTorch path and says so once). ``EAN_NO_EXTENSION=1`` skips it."""
    if os.environ.get('EAN_NO_EXTENSION', '0') == '1':
        return None
    try:
        import torch
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        warnings.warn('torch is not importable at build time: ean_mm._C is not built')
        return None
    # ATen's vector types take the instruction set from these macros, as in torch's own build;
    # the kernels are built on and for the machine that runs them.
    capability = torch.backends.cpu.get_cpu_capability()
    # -fopenmp: at::parallel_for is OpenMP inside the headers (torch's own libgomp at run time).
    flags = ['-O3', '-fopenmp']
    if capability == 'AVX512':  # 16 floats a vector, as torch's own AVX512 kernels
        flags += ['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mfma', '-mf16c',
                  '-DCPU_CAPABILITY=AVX512', '-DCPU_CAPABILITY_AVX512']
    elif capability == 'AVX2':
        flags += ['-mavx2', '-mfma', '-mf16c', '-DCPU_CAPABILITY=AVX2', '-DCPU_CAPABILITY_AVX2']
    ext = CppExtension('ean_mm._C', ['ean_mm/csrc/ean_cpu.cpp'], extra_compile_args=flags,
                       extra_link_args=['-fopenmp'])
    return ext, BuildExtension.with_options(no_python_abi_suffix=False)


class _OptionalBuild:
    """A build_ext that warns instead of failing when the compiler does."""

    @staticmethod
    def wrap(build_cls):
        class OptionalBuildExtension(build_cls):
            def run(self):
                try:
                    super().run()
                except Exception as err:  # noqa: BLE001  (no compiler, missing headers)
                    warnings.warn(f'ean_mm._C was not built ({err}); ean_mm uses its PyTorch '
                                  'kernels on CPU (slower)')

            def build_extension(self, ext):
                try:
                    super().build_extension(ext)
                except Exception as err:  # noqa: BLE001
                    warnings.warn(f'ean_mm._C was not built ({err}); ean_mm uses its PyTorch '
                                  'kernels on CPU (slower)')
        return OptionalBuildExtension


built = cpu_extension()
extension_args = {}
if built is not None:
    ext, build_cls = built
    extension_args = dict(ext_modules=[ext],
                          cmdclass={'build_ext': _OptionalBuild.wrap(build_cls)})

setup(
    name='ean_mm',
    version=get_version(),
    description='EAN (AAAI 2024) normalization-guided attention for MMDetection and MMPreTrain',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['ean_mm', 'ean_mm.*']),
    python_requires='>=3.8',
    # torch / torchvision / mmcv are left to tools/setup_env.sh: a user's own CUDA build of torch
    # must not be replaced, and mmcv needs a build matching that torch.
    install_requires=['mmengine>=0.10.0,<1.0', 'mmdet>=3.3.0,<3.4', 'mmpretrain>=1.2.0,<1.3'],
    # cam: tools/analysis/gradcam.py (class activation maps); deploy: tools/deployment (ONNX
    # export needs onnx and onnxscript, torch's exporter; onnxruntime and OpenVINO run the
    # files);
    # analysis: mmdet's own tools/analysis_tools run on our configs (benchmark.py imports
    # psutil, analyze_logs.py seaborn; mmdet's package does not require them);
    # tools/setup_env.sh installs all three
    # mim: what openmim 0.3.9 (`mim search` / `mim train` / `mim test`, model-index.yml read
    # back by the tests) imports; modelindex is the loader `mim search` calls. openmim itself is
    # installed by tools/setup_env.sh with --no-deps: its requirement opendatalab pulls openxlab,
    # which pins setuptools~=60.2, requests~=2.28, rich~=13.4, tqdm~=4.65 and filelock~=3.14
    # (pip downgrades them; torch needs setuptools>=77) and which mim never imports. click<8.3:
    # openmim's CustomCommand.parse_args is a copy of click's from before 8.3, so with click>=8.3
    # every unset option reaches mim as a Sentinel (`mim train --launcher slurm` fails on
    # srun_args.split).
    extras_require={'tests': ['pytest'], 'cam': ['grad-cam==1.5.7'],
                    'deploy': ['onnx==1.23.2', 'onnxscript==0.7.2', 'onnxruntime==1.32.0',
                               'openvino==2026.4.1'],
                    'analysis': ['psutil==7.2.2', 'seaborn==0.13.2'],
                    'mim': ['model-index==0.1.11', 'click>=8,<8.3', 'pandas', 'requests',
                            'rich', 'tabulate', 'colorama']},
    license='Apache-2.0',
    **extension_args,
)
