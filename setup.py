"""Maps the top-level folders onto the `spanhouse.*` import names; every folder with
an __init__.py below them is a package, so new subpackages need no listing here.

The OTLP decoder's C fast path is an optional extension: without a C compiler or the
Python headers the build prints a warning and installs the pure-Python decoder alone
(which the collector then uses, saying so at start-up)."""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, PlatformError

# What a machine without a working C toolchain makes setuptools raise.
_NO_COMPILER = (CCompilerError, CompileError, ExecError, PlatformError, OSError)

ROOTS = {"spanhouse.collector": "collector", "spanhouse.instrumentation": "instrumentation",
         "spanhouse.schemas": "schemas"}

packages = []
for name, root in ROOTS.items():
    for dirpath, _dirs, files in os.walk(root):
        if "__init__.py" in files:
            packages.append(name + dirpath[len(root):].replace(os.sep, "."))

NATIVE_DECODE = Extension(
    "spanhouse.collector.receiver._fastdecode",
    sources=["collector/receiver/_fastdecode.c"],
    extra_compile_args=[] if sys.platform == "win32" else ["-O2", "-std=c99", "-Wall", "-Wextra",
                                                          "-Wno-unused-parameter"],
    optional=True,
)


class OptionalBuildExt(build_ext):
    """Build the C extension if this machine can; otherwise warn and go on without it."""

    def run(self) -> None:
        try:
            super().run()
        except _NO_COMPILER as exc:  # no compiler at all (setuptools raises before compiling)
            _warn(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except _NO_COMPILER as exc:  # compiler or headers missing, or a compile error
            _warn(exc)


def _warn(exc: BaseException) -> None:
    print(f"WARNING: the native OTLP decoder ({NATIVE_DECODE.name}) was not built: {exc}. spanhouse works "
          "without it, decoding in pure Python at a few times the CPU per span; to build it, install a C "
          "compiler and the Python headers (e.g. apt-get install gcc python3-dev) and reinstall.",
          file=sys.stderr)


setup(packages=packages, package_dir=ROOTS, ext_modules=[NATIVE_DECODE],
      cmdclass={"build_ext": OptionalBuildExt})
