"""Builds the pbm package, its extension pbm.mailbox_ext (torch.utils.cpp_extension) and the
top-level shim mailbox_ext.py (`import mailbox_ext`, as for the original extension).

No network access is needed: build with the torch already installed (no build isolation):

    pip install --no-build-isolation ./python          # or: cd python && python setup.py build_ext --inplace
    pip wheel --no-build-isolation ./python            # a wheel for that torch and CUDA

pyproject.toml declares the build system and the same metadata as setup() below.

The extension links pbm's static libraries (pbm_core, pbm_telemetry, pbm_exporters when present).
They come from a CMake build of this repository: PBM_BUILD_DIR=<dir> names an existing one;
otherwise setup.py configures and builds those targets in python/build/pbm-cmake (needs cmake,
nvcc and the CUDA toolkit, as for the rest of pbm).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup

try:
    import torch
    from torch.utils.cpp_extension import BuildExtension, CUDAExtension, CUDA_HOME
except ImportError as _torch_error:
    # One line instead of a traceback: which interpreter lacks torch, and what to do about it.
    sys.exit(f"pbm: building mailbox_ext needs torch, which {sys.executable} cannot import "
             f"({type(_torch_error).__name__}: {_torch_error}); install torch for that interpreter "
             f"({sys.executable} -m pip install torch), then build with `{sys.executable} -m pip install "
             "--no-build-isolation ./python` (pip's isolated build environment would not use this torch)")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def cmake_build_dir() -> Path:
    given = os.environ.get("PBM_BUILD_DIR")
    if given:
        return Path(given).resolve()
    return HERE / "build" / "pbm-cmake"


def find_lib(build: Path, component: str) -> Path:
    return build / component / f"libpbm_{component}.a"


def build_static_libs(build: Path) -> None:
    """Configures and builds pbm_core, pbm_telemetry (and pbm_exporters) unless they exist."""
    if find_lib(build, "core").exists() and find_lib(build, "telemetry").exists():
        return
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("pbm: cmake is needed to build pbm's libraries (or set PBM_BUILD_DIR to a build)")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    abi = int(getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", True))
    flags = f"-D_GLIBCXX_USE_CXX11_ABI={abi}"
    subprocess.check_call([
        cmake, "-S", str(ROOT), "-B", str(build), *generator,
        "-DCMAKE_BUILD_TYPE=Release", "-DPBM_WITH_TORCH=OFF",
        "-DPBM_BUILD_TESTS=OFF", "-DPBM_BUILD_EXAMPLES=OFF", "-DPBM_BUILD_BENCH=OFF",
        f"-DCMAKE_CXX_FLAGS={flags}", f"-DCMAKE_CUDA_FLAGS=-Xcompiler={flags}",
    ])
    subprocess.check_call([cmake, "--build", str(build), "--target", "pbm_core", "pbm_telemetry"])
    if (ROOT / "exporters" / "CMakeLists.txt").exists():
        # Optional: a missing dependency (e.g. nlohmann-json) leaves the exporters out, not the build.
        subprocess.call([cmake, "--build", str(build), "--target", "pbm_exporters"])


def cache_value(build: Path, name: str) -> str:
    cache = build / "CMakeCache.txt"
    if not cache.exists():
        return ""
    m = re.search(rf"^{re.escape(name)}:[A-Z]+=(.*)$", cache.read_text(), re.MULTILINE)
    return m.group(1).strip() if m else ""


SYSTEM_LIB_DIRS = {"/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
                   "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/local/lib"}


def prometheus_link_dirs(config_dir: Path):
    """Where the prometheus-cpp libraries are, from the CMake package directory the build found
    (<libdir>/cmake/prometheus-cpp): a -L for the link and, outside the system's library directories
    (e.g. a private prefix unpacked with dpkg -x), an RPATH so the extension loads without
    LD_LIBRARY_PATH. DT_RPATH (--disable-new-dtags), not RUNPATH: it also serves the libraries'
    own dependencies (civetweb beside them)."""
    libdir = config_dir.resolve().parents[1]
    if not any(libdir.glob("libprometheus-cpp-core.so*")):
        return [], []
    if str(libdir) in SYSTEM_LIB_DIRS:
        return [str(libdir)], []
    return [str(libdir)], ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{libdir}"]


class BuildPbmExtension(BuildExtension):
    """Builds (or finds) pbm's static libraries first, then links them into the extension."""

    def run(self):
        build = cmake_build_dir()
        build_static_libs(build)
        objects = []
        libraries = ["dl", "pthread"]
        library_dirs, link_args = [], []
        exporters = find_lib(build, "exporters")
        have_exporters = exporters.exists()
        if have_exporters:
            objects.append(str(exporters))
            prometheus_dir = cache_value(build, "prometheus-cpp_DIR")
            if prometheus_dir and not prometheus_dir.endswith("NOTFOUND"):
                libraries += ["prometheus-cpp-pull", "prometheus-cpp-core"]
                library_dirs, link_args = prometheus_link_dirs(Path(prometheus_dir))
        objects += [str(find_lib(build, "telemetry")), str(find_lib(build, "core"))]
        for ext in self.extensions:
            ext.extra_objects = objects + list(ext.extra_objects or [])
            ext.libraries = list(ext.libraries or []) + libraries
            ext.library_dirs = list(ext.library_dirs or []) + library_dirs
            ext.extra_link_args = list(ext.extra_link_args or []) + link_args
            ext.define_macros = list(ext.define_macros or []) + [
                ("PBM_PY_HAVE_EXPORTERS", "1" if have_exporters else "0")]
        super().run()


def extension() -> CUDAExtension:
    cuda_include = Path(CUDA_HOME or "/usr/local/cuda") / "include"
    return CUDAExtension(
        name="pbm.mailbox_ext",
        sources=["src/adopted.cpp", "src/bound_mailbox.cpp", "src/mailbox_ext.cpp", "src/telemetry_bindings.cpp"],
        include_dirs=[
            str(ROOT / "core" / "include"),
            str(ROOT / "telemetry" / "include"),
            str(ROOT / "exporters" / "include"),
            str(cuda_include),
            str(cuda_include / "cccl"),
        ],
        extra_compile_args={"cxx": ["-std=c++17", "-O2"]},
    )


os.chdir(HERE)  # sources are relative to python/
setup(
    name="pbm",
    version="0.1.0",
    description="GPU mailbox for PyTorch with memcpy/sync telemetry",
    packages=["pbm"],
    py_modules=["mailbox_ext"],  # the top-level shim beside the package
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildPbmExtension},
    python_requires=">=3.9",
    zip_safe=False,
)
