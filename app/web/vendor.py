"""The browser libraries the pages load, from their npm packages (never a CDN): the copies a wheel carries in
static/vendor/ (setup.py puts them there at build time, from web/node_modules), else web/node_modules in a checkout,
where `make install` runs `npm ci` at the versions web/package-lock.json pins.

vendor.json, beside this module, is the one list of them (served name -> path under node_modules); setup.py reads it
too."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from app.config import REPO_ROOT

MANIFEST = Path(__file__).resolve().parent / "vendor.json"
PACKAGED_DIR = Path(__file__).resolve().parent / "static" / "vendor"
NODE_MODULES = REPO_ROOT / "web" / "node_modules"
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}


@functools.cache
def manifest() -> dict[str, str]:
    """Served name -> path of the file under node_modules."""
    found: dict[str, str] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return found


def vendor_file(name: str) -> Path | None:
    """The file behind a vendor URL name (it may be missing: not installed), or None for a name no page uses."""
    relative = manifest().get(name)
    if relative is None:
        return None
    packaged = PACKAGED_DIR / name
    return packaged if packaged.is_file() else NODE_MODULES / relative


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix, "application/octet-stream")
