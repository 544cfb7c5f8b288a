"""A throwaway Python environment that sees this one's packages minus some: to test what a user with a
different set of packages installed would see, without installing or removing anything here.

The new venv's site-packages holds one .pth that adds a directory of symlinks to every entry of this
environment's site-packages, except the hidden ones. A distribution hidden by its metadata only (its
.dist-info) is invisible to entry points and version checks, as if not installed; hiding its top-level
modules too makes it unimportable.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

_AUTO_INSTRUMENT = ("import sys; from opentelemetry.instrumentation.auto_instrumentation import run; "
                    "sys.argv[0] = 'opentelemetry-instrument'; sys.exit(run())")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_name(entry: str) -> str | None:
    if not entry.endswith((".dist-info", ".egg-info")):
        return None
    return _normalize(entry.rsplit(".", 1)[0].split("-", 1)[0])


def _site_dirs() -> list[Path]:
    return [Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]


def _path_only_pth(path: Path, flattened: set[Path]) -> bool:
    """A .pth that only adds site-packages directories we flatten anyway (a venv layered on another)."""
    lines = [line.strip() for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return bool(lines) and all(Path(line) in flattened for line in lines)


def _is_namespace(path: Path) -> bool:
    return path.is_dir() and not (path / "__init__.py").exists()


def _merge(source: Path, dest: Path) -> None:
    """Link `source` at `dest`; a namespace package found in two site dirs (`opentelemetry`) gets both."""
    if not dest.exists() and not dest.is_symlink():
        dest.symlink_to(source)
        return
    if not (_is_namespace(source) and _is_namespace(dest)):
        return  # the first one on sys.path wins, as on import
    if dest.is_symlink():
        first = dest.resolve()
        dest.unlink()
        dest.mkdir()
        for child in first.iterdir():
            (dest / child.name).symlink_to(child)
    for child in source.iterdir():
        if child.name != "__pycache__":
            _merge(child, dest / child.name)


class SiteView:
    """A venv whose python sees this environment minus `hide_dists` (metadata) and `hide_modules`."""

    def __init__(self, root: Path, hide_dists: Iterable[str] = (), hide_modules: Iterable[str] = (),
                 first: Iterable[Path] = ()) -> None:
        """`first`: directories of packages (`pip install --target`) seen before this environment's, and
        never hidden: they can stand in for a hidden distribution of another version."""
        hidden_dists = {_normalize(d) for d in hide_dists}
        hidden_modules = set(hide_modules)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
        self.python = root / "venv" / "bin" / "python"
        farm = root / "site"
        farm.mkdir()
        flattened = set(_site_dirs())
        added = [Path(d) for d in first]
        for site_dir in [*added, *_site_dirs()]:  # sys.path order: the first of a name wins, as on import
            hiding = site_dir not in added
            for entry in sorted(os.listdir(site_dir)):
                source = site_dir / entry
                if entry == "__pycache__":
                    continue
                hidden = _dist_name(entry) in hidden_dists or entry.removesuffix(".py") in hidden_modules
                if hiding and hidden:
                    continue
                if entry.endswith(".pth") and _path_only_pth(source, flattened):
                    continue
                _merge(source, farm / entry)
        (site_packages,) = (root / "venv" / "lib").glob("python*/site-packages")
        # addsitedir, not a bare path line: the farm's own .pth files (editable installs) must run too.
        (site_packages / "site_view.pth").write_text(f"import site; site.addsitedir({str(farm)!r})\n")

    def run(self, *args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.python), *args], env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def auto_instrument(self, app: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """`opentelemetry-instrument python app.py` in this environment, as a user would run it."""
        return self.run("-c", _AUTO_INSTRUMENT, str(self.python), str(app), *args, env=env)
