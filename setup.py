"""Maps the top-level folders onto the `spanhouse.*` import names; every folder with
an __init__.py below them is a package, so new subpackages need no listing here.

The OTLP decoder's and the redactor's C fast paths are optional extensions: without a C
compiler or the Python headers the build prints a warning and installs the pure-Python code
alone (which the collector then uses, saying so at start-up)."""

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
NATIVE_REDACT = Extension(
    "spanhouse.collector.processors.redaction._fastredact",
    sources=["collector/processors/redaction/_fastredact.c"],
    extra_compile_args=NATIVE_DECODE.extra_compile_args,
    optional=True,
)
NATIVE_PURPOSE = {NATIVE_DECODE.name: "decoding OTLP in pure Python at a few times the CPU per span",
                  NATIVE_REDACT.name: "confirming e-mail, phone and card matches in Python, several times "
                                      "slower on content full of PII"}


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
            _warn(exc, ext.name)


def _warn(exc: BaseException, name: str | None = None) -> None:
    what = f"the native extension {name}" if name else "the native extensions"
    purpose = NATIVE_PURPOSE.get(name or "", "using the pure-Python code")
    print(f"WARNING: {what} was not built: {exc}. spanhouse works without it, {purpose}; to build it, "
          "install a C compiler and the Python headers (e.g. apt-get install gcc python3-dev) and reinstall.",
          file=sys.stderr)


setup(packages=packages, package_dir=ROOTS, ext_modules=[NATIVE_DECODE, NATIVE_REDACT],
      cmdclass={"build_ext": OptionalBuildExt})
