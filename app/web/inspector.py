"""The /inspect page's files: its own static files, and the graph library installed from npm (never a CDN).

The library is installed by `make install` (`npm ci` in web/, from the committed package-lock.json) and served
from its installed dist file; no copy of it is committed. web.py turns these into routes.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from app.config import REPO_ROOT

STATIC_DIR = Path(__file__).resolve().parent / "static" / "inspect"
PAGE = STATIC_DIR / "index.html"
NODE_MODULES = REPO_ROOT / "web" / "node_modules"

# URL name -> the installed file it serves.
VENDOR_FILES = {
    "cytoscape.min.js": NODE_MODULES / "cytoscape" / "dist" / "cytoscape.min.js",
}

MISSING_VENDOR = "the inspector's graph library is not installed: run `make install` (it runs `npm ci` in web/)"

# Cytoscape adds one <style> element of its own to the page; allow exactly that one, by its hash.
_CYTOSCAPE_STYLE = ".__________cytoscape_container { position: relative; }"


def _style_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Everything the page loads comes from this server; the token never leaves for another origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        f"style-src 'self' {_style_hash(_CYTOSCAPE_STYLE)}",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

PAGE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "cache-control": "no-cache",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


def vendor_file(name: str) -> Path | None:
    """The installed file behind /inspect/vendor/<name>, or None for a name the page does not use."""
    return VENDOR_FILES.get(name)
