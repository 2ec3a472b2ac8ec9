"""Install mmitpn: ``pip install -e .`` (the stack itself is installed by
``tools/env/setup_env.sh``, which builds mmcv with its compiled ops)."""
import os.path as osp

from setuptools import find_packages, setup


def readme():
    with open('README.md', encoding='utf-8') as f:
        return f.read()


def get_version():
    scope = {}
    with open(osp.join('mmitpn', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname):
    """Read a requirements file, skipping comments and ``-r`` includes."""
    reqs = []
    with open(fname, encoding='utf-8') as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


if __name__ == '__main__':
    setup(
        name='mmitpn',
        version=get_version(),
        description='iTPN (integrally pre-trained transformer pyramid '
        'networks) for the OpenMMLab ecosystem',
        long_description=readme(),
        long_description_content_type='text/markdown',
        keywords='computer vision, self-supervised learning, detection, '
        'segmentation, masked image modeling',
        packages=find_packages(exclude=('configs', 'tools', 'tests')),
        include_package_data=True,
        python_requires='>=3.8',
        license='Apache License 2.0',
        install_requires=parse_requirements('requirements/runtime.txt'),
        extras_require={
            'mim': parse_requirements('requirements/mminstall.txt'),
            'tests': parse_requirements('requirements/tests.txt'),
        },
        zip_safe=False)
