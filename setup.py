from setuptools import find_packages, setup


def get_version() -> str:
    scope: dict = {}
    with open('ean_mm/version.py', encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


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
    extras_require={'tests': ['pytest']},
    license='Apache-2.0',
)
