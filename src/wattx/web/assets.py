"""Browser assets: the dashboard's own files, and the npm packages' files it uses.

The npm files are served from ``node_modules`` as installed from
``package-lock.json`` (``make setup``); nothing is copied or fetched from a CDN.
Only the files listed in :data:`VENDOR` are reachable.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.responses import PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

OWN = Path(__file__).parent / "static"

VENDOR: dict[str, str] = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "htmx-sse.js": "htmx-ext-sse/dist/sse.min.js",
    "uPlot.iife.min.js": "uplot/dist/uPlot.iife.min.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
}


def node_modules() -> Path:
    """``WATTX_NODE_MODULES``, else ``node_modules`` of the working directory, else of the
    source checkout this package sits in."""
    configured = os.environ.get("WATTX_NODE_MODULES")
    if configured:
        return Path(configured)
    here = Path.cwd() / "node_modules"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[3] / "node_modules"


class VendorFiles:
    """Serves the allow-listed npm files (ASGI app mounted at ``/vendor``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = StaticFiles(directory=root, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"].rsplit("/", 1)[-1]
        target = VENDOR.get(name)
        if target is None or not (self.root / target).is_file():
            response: Response = PlainTextResponse("not found", status_code=404)
            await response(scope, receive, send)
            return
        inner = dict(scope)
        inner["path"] = "/" + target
        inner["root_path"] = ""
        await self.files(inner, receive, send)
