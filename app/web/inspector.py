"""The /inspect page's files: its own static files, and the graph library installed from npm (never a CDN).

The library comes from its npm package through app/web/vendor.py (the wheel's copy, else web/node_modules); no copy
of it is committed. app/web/app.py turns these into routes.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from app.web import vendor

STATIC_DIR = Path(__file__).resolve().parent / "static" / "inspect"
PAGE = STATIC_DIR / "index.html"
VENDOR_FILES = ("cytoscape.min.js",)  # the names of app/web/vendor.json this page loads

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
    return vendor.vendor_file(name) if name in VENDOR_FILES else None
