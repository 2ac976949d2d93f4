"""Builds mmtransnext and its one compiled module, mmtransnext._ext, as mmcv builds mmcv._ext.

  * C++ (CPU) kernels always; CUDA kernels too when torch sees a GPU or FORCE_CUDA=1.
  * MMTRANSNEXT_WITH_OPS=0 builds no extension (the pure-PyTorch path is used).
  * TORCH_CUDA_ARCH_LIST and MAX_JOBS are honoured (by torch's BuildExtension, with ninja).
  * configs/ ships inside the package as mmtransnext/.mim/configs, where mmengine looks for
    ``_base_ = 'mmtransnext::<path>'`` (as mmdet ships its own): copied for a wheel,
    linked for an editable install.
"""
import glob
import os
import shutil
import site
import sys

from setuptools import setup


def _cuda_include_dirs():
    """CUDA headers of torch's pip packages (nvidia/cu13/include): ATen's CUDA headers need
    some (cusparse.h) that a bare toolkit install may lack."""
    dirs = []
    for base in site.getsitepackages() + [site.getusersitepackages()]:
        dirs += glob.glob(os.path.join(base, 'nvidia', 'cu*', 'include'))
        dirs += glob.glob(os.path.join(base, 'nvidia', '*', 'include'))
    return sorted(set(dirs))


def get_extensions():
    if os.getenv('MMTRANSNEXT_WITH_OPS', '1') == '0':
        return []
    import torch
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    sources = sorted(glob.glob('csrc/*.cpp') + glob.glob('csrc/cpu/*.cpp'))
    if not sources:
        return []
    with_cuda = torch.cuda.is_available() or os.getenv('FORCE_CUDA', '0') == '1'
    extra_compile_args = {'cxx': ['-O3', '-std=c++17']}
    kwargs = dict(include_dirs=[os.path.abspath('csrc')], define_macros=[], extra_link_args=[])
    if sys.platform.startswith('linux'):
        # at::parallel_for is inline: without OpenMP it runs the CPU kernels on one thread.
        # libgomp.so.1 resolves to the copy torch has already loaded.
        extra_compile_args['cxx'].append('-fopenmp')
        kwargs['extra_link_args'].append('-fopenmp')
    if with_cuda:
        if not torch.cuda.is_available() and not os.getenv('TORCH_CUDA_ARCH_LIST'):
            # No GPU to detect the arch from (e.g. CI proving the kernels build): Hopper.
            os.environ['TORCH_CUDA_ARCH_LIST'] = '9.0'
        sources += sorted(glob.glob('csrc/cuda/*.cu'))
        kwargs['define_macros'].append(('WITH_CUDA', None))
        kwargs['include_dirs'] += _cuda_include_dirs()
        extra_compile_args['nvcc'] = ['-O3', '-std=c++17', '--expt-relaxed-constexpr']
        ext_cls = CUDAExtension
    else:
        ext_cls = CppExtension
    print(f'mmtransnext._ext: building {"CPU + CUDA" if with_cuda else "CPU"} kernels',
          file=sys.stderr)
    return [ext_cls('mmtransnext._ext', sources, extra_compile_args=extra_compile_args,
                    **kwargs)]


def get_cmdclass():
    if os.getenv('MMTRANSNEXT_WITH_OPS', '1') == '0':
        return {}
    from torch.utils.cpp_extension import BuildExtension
    return {'build_ext': BuildExtension.with_options(use_ninja=True)}


def add_mim_configs():
    """mmtransnext/.mim/configs: a link to configs/ while developing (editable install),
    a copy for a wheel or a regular install."""
    target = os.path.join('mmtransnext', '.mim', 'configs')
    editable = any(cmd in sys.argv for cmd in ('develop', 'editable_wheel'))
    if os.path.islink(target) or os.path.isfile(target):
        os.remove(target)
    elif os.path.isdir(target):
        shutil.rmtree(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if editable:
        os.symlink(os.path.join('..', '..', 'configs'), target)
    else:
        shutil.copytree('configs', target)
    # mmengine reads a model index before it takes a path as a base config: an empty one
    with open(os.path.join('mmtransnext', '.mim', 'model-index.yml'), 'w') as f:
        f.write('Import: []\n')


if os.path.isdir('configs'):
    add_mim_configs()
setup(ext_modules=get_extensions(), cmdclass=get_cmdclass(),
      package_data={'mmtransnext': ['.mim/model-index.yml', '.mim/configs/*.py',
                                    '.mim/configs/*/*.py']},
      include_package_data=False)
