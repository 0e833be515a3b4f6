"""GET /widget.js (the embeddable chat widget) and GET / (a demo page that shows it)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

router = APIRouter(tags=["widget"])
STATIC = Path(__file__).resolve().parent.parent / "static"


@router.get("/widget.js", summary="The chat widget: add it to any page with one script tag")
async def widget() -> Response:
    # Docs sites load it from another origin, so it opts out of the same-origin resource policy.
    return Response((STATIC / "widget.js").read_bytes(), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"})


@router.get("/", summary="Demo page: the widget next to sample book text", include_in_schema=False)
async def demo() -> HTMLResponse:
    return HTMLResponse((STATIC / "demo.html").read_text())
