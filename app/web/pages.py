"""The headers of the pages idgraph serves itself (/inspect, GraphiQL): everything a page loads comes from this
server, so the bearer token never leaves for another origin."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence


def style_hash(text: str) -> str:
    """A CSP source allowing exactly one inline <style> element with this text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def content_security_policy(*, inline_styles: Sequence[str] = (), data_fonts: bool = False) -> str:
    """'self' only, plus the inline styles a page's library writes (by their hash) and, when its stylesheet embeds
    them, data: fonts."""
    styles = " ".join(["'self'", *(style_hash(text) for text in inline_styles)])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            f"style-src {styles}",
            "img-src 'self' data:",
            *(["font-src 'self' data:"] if data_fonts else []),
            "connect-src 'self'",
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def page_headers(policy: str) -> dict[str, str]:
    return {
        "content-security-policy": policy,
        "cache-control": "no-cache",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
    }
