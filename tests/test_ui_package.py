"""The web UI's files ship in the package: every file under collector/ui/static matches a package-data pattern
of pyproject.toml (a wheel built without them would serve 404s), and the vendored chart library keeps its licence
and the version docs/ui.md names."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "collector" / "ui" / "static"


def test_every_static_file_is_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "spanhouse.collector.ui"]
    files = [p.relative_to(STATIC.parent).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert len(files) > 10
    missing = [f for f in files if not any(fnmatch.fnmatchcase(f, pattern) for pattern in patterns)]
    assert missing == []


def test_uplot_is_vendored_with_its_licence_and_documented_version() -> None:
    vendor = STATIC / "vendor" / "uplot"
    assert "MIT License" in (vendor / "LICENSE").read_text()
    assert (vendor / "uPlot.iife.min.js").stat().st_size > 20_000
    docs = (ROOT / "docs" / "ui.md").read_text()
    assert "**1.6.32**" in docs and "npm pack uplot@1.6.32" in docs


def test_no_page_script_writes_html_from_data() -> None:
    """Data becomes text nodes only (dom.js); innerHTML / insertAdjacentHTML / document.write appear nowhere."""
    for script in STATIC.glob("*.js"):
        text = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{script.name} uses {sink}"
