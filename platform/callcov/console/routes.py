"""``/console``: the console's page and its three static files, with a strict Content-Security-Policy
(scripts and styles from this origin only, no inline code, no framing)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from callcov.errors import NotFound

STATIC = Path(__file__).parent / "static"
FILES = {"app.js": "text/javascript", "app.css": "text/css"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("")
async def console_page() -> FileResponse:
    """The one page; the console routes itself (``#/calls``, ``#/agents``, …)."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/static/{name}")
async def console_file(name: str) -> FileResponse:
    if name not in FILES:
        raise NotFound()
    return FileResponse(STATIC / name, media_type=f"{FILES[name]}; charset=utf-8", headers=HEADERS)
