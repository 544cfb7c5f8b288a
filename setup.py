"""Maps the top-level folders onto the `spanhouse.*` import names; every folder with
an __init__.py below them is a package, so new subpackages need no listing here."""

import os

from setuptools import setup

ROOTS = {"spanhouse.collector": "collector", "spanhouse.instrumentation": "instrumentation",
         "spanhouse.schemas": "schemas"}

packages = []
for name, root in ROOTS.items():
    for dirpath, _dirs, files in os.walk(root):
        if "__init__.py" in files:
            packages.append(name + dirpath[len(root):].replace(os.sep, "."))

setup(packages=packages, package_dir=ROOTS)
