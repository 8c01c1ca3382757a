"""GraphiQL at GET /graphql, served by idgraph itself so that it works where idgraph runs, internet or not.

React, ReactDOM and GraphiQL come from their npm packages in web/node_modules, installed by `make install` (`npm ci`
in web/) at the versions web/package-lock.json pins; no CDN, no committed copy. The page's own script
(static/graphiql/graphiql.js) keeps nothing in the browser: GraphiQL gets an in-memory storage, headers (the bearer
token) are never persisted, and no query or variable is ever copied into the URL.

The app lists these routes before the API's /graphql route: a browser's GET of /graphql gets the page, every other
request to /graphql goes on to the API.
"""

from __future__ import annotations

from pathlib import Path

from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.web import pages, vendor

STATIC_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
PAGE = STATIC_DIR / "index.html"
# The names of app/web/vendor.json this page loads. GraphiQL 3's browser bundle expects React 18's UMD builds as the
# globals React and ReactDOM (React 19 has none).
VENDOR_FILES = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "graphiql.min.css")

MISSING_VENDOR = "GraphiQL's browser files are not installed: run `make install` (it runs `npm ci` in web/)"

# GraphiQL's dialogs (settings, short keys) lock the page's scrolling with one <style> element of their own
# (react-remove-scroll-bar). Its text holds the scrollbar's width and the body's margins, all 0 on this page, whose
# body never scrolls (graphiql.css): allow exactly that text, by its hash, and no other inline style.
_SCROLL_LOCK_STYLE = (
    "\n  .with-scroll-bars-hidden {\n   overflow: hidden !important;\n   padding-right: 0px !important;\n  }"
    "\n  body {\n    overflow: hidden !important;\n    overscroll-behavior: contain;\n"
    "    position: relative !important;\n    padding-left: 0px;\n    padding-top: 0px;\n    padding-right: 0px;\n"
    "    margin-left:0;\n    margin-top:0;\n    margin-right: 0px !important;\n    \n  }"
    "\n  \n  .right-scroll-bar-position {\n    right: 0px !important;\n  }"
    "\n  \n  .width-before-scroll-bar {\n    margin-right: 0px !important;\n  }"
    "\n  \n  .right-scroll-bar-position .right-scroll-bar-position {\n    right: 0 !important;\n  }"
    "\n  \n  .width-before-scroll-bar .width-before-scroll-bar {\n    margin-right: 0 !important;\n  }"
    "\n  \n  body {\n    --removed-body-scroll-bar-size: 0px;\n  }\n"
)


# Everything the page loads comes from this server (GraphiQL's stylesheet embeds its fonts as data: URLs).
CONTENT_SECURITY_POLICY = pages.content_security_policy(inline_styles=[_SCROLL_LOCK_STYLE], data_fonts=True)
PAGE_HEADERS = pages.page_headers(CONTENT_SECURITY_POLICY)


def wants_page(scope: Scope) -> bool:
    """The requests strawberry's own GraphiQL would have answered: a GET without a `query` parameter from a client
    that accepts HTML. Anything else (an operation over GET included) is the API's to answer."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    if "query" in QueryParams(scope.get("query_string", b"")):
        return False
    accept = Headers(scope=scope).get("accept", "")
    return "text/html" in accept or "*/*" in accept


class PageRoute(Route):
    """A GET route that matches only the requests wants_page accepts; the others fall through to the next route."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.FULL or not wants_page(scope):
            return Match.NONE, {}
        return match, child_scope


async def graphiql_page(request: Request) -> Response:
    """GraphiQL; it asks for nothing itself: the token goes into its Headers tab, and from there only to /graphql."""
    return FileResponse(PAGE, media_type="text/html", headers=PAGE_HEADERS)


def vendor_file(name: str) -> Path | None:
    """The installed file behind /graphiql/vendor/<name> (it may be missing), or None for a name the page does not
    use."""
    return vendor.vendor_file(name) if name in VENDOR_FILES else None


async def graphiql_vendor(request: Request) -> Response:
    """A browser library the page loads, served from its installed npm package."""
    path = vendor_file(request.path_params["name"])
    if path is None:
        return PlainTextResponse("not found", status_code=404)
    if not path.is_file():
        return PlainTextResponse(MISSING_VENDOR, status_code=503)
    headers = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}
    return FileResponse(path, media_type=vendor.media_type(path), headers=headers)


def graphiql_routes() -> list[BaseRoute]:
    """The page at GET /graphql, its libraries and its own files; to be listed before the API's /graphql route."""
    return [
        PageRoute("/graphql", graphiql_page, methods=["GET"], name="graphiql"),
        Route("/graphiql/vendor/{name}", graphiql_vendor, methods=["GET"]),
        Mount("/graphiql/static", StaticFiles(directory=STATIC_DIR), name="graphiql-static"),
    ]
