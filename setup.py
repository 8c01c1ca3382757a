"""Build step of the wheel: the package data that lives outside app/ in the repository.

- cypher/ (the one source of the statements, as the design names it) goes in as app/cypher/;
- the browser libraries app/web/vendor.json lists go in as app/web/static/vendor/, from web/node_modules (run
  `npm ci` in web/ first; `make install` does).

Everything else is in pyproject.toml. An editable install reads both from the checkout instead.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithPackageData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "app"
        shutil.copytree(ROOT / "cypher", target / "cypher", dirs_exist_ok=True)
        vendor = target / "web" / "static" / "vendor"
        vendor.mkdir(parents=True, exist_ok=True)
        manifest = json.loads((ROOT / "app" / "web" / "vendor.json").read_text(encoding="utf-8"))
        for name, relative in manifest.items():
            source = ROOT / "web" / "node_modules" / relative
            if not source.is_file():
                raise SystemExit(f"{source} is missing: run `npm ci` in web/ (or `make install`) before building")
            shutil.copyfile(source, vendor / name)


setup(cmdclass={"build_py": BuildWithPackageData})
