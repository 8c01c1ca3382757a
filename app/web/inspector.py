"""The /inspect page's files: its own static files, and the graph library installed from npm (never a CDN).

The library comes from its npm package through app/web/vendor.py (the wheel's copy, else web/node_modules); no copy
of it is committed. app/web/app.py turns these into routes.
"""

from __future__ import annotations

from pathlib import Path

from app.web import pages, vendor

STATIC_DIR = Path(__file__).resolve().parent / "static" / "inspect"
PAGE = STATIC_DIR / "index.html"
VENDOR_FILES = ("cytoscape.min.js",)  # the names of app/web/vendor.json this page loads

MISSING_VENDOR = "the inspector's graph library is not installed: run `make install` (it runs `npm ci` in web/)"

# Cytoscape adds one <style> element of its own to the page; allow exactly that one, by its hash.
_CYTOSCAPE_STYLE = ".__________cytoscape_container { position: relative; }"


# Everything the page loads comes from this server; the token never leaves for another origin.
CONTENT_SECURITY_POLICY = pages.content_security_policy(inline_styles=[_CYTOSCAPE_STYLE])
PAGE_HEADERS = pages.page_headers(CONTENT_SECURITY_POLICY)


def vendor_file(name: str) -> Path | None:
    """The installed file behind /inspect/vendor/<name>, or None for a name the page does not use."""
    return vendor.vendor_file(name) if name in VENDOR_FILES else None
