"""lectern gaps: the gap report of a running Lectern, over HTTP with the admin token (from
LECTERN_ADMIN_TOKEN). Exit codes: 0 shown; 1 the server refused or failed; 2 usage (no token)."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

from gateway.settings import ADMIN_TOKEN

OK, FAILED, USAGE = 0, 1, 2


def fetch_gaps(url: str, token: str, days: int, book: str = "", client: httpx.Client | None = None
               ) -> dict[str, Any]:
    """The report as the gateway returns it; raises httpx.HTTPError or ValueError (with the
    server's message) when it cannot be had."""
    params: dict[str, str | int] = {"days": days}
    if book:
        params["book"] = book
    http = client or httpx.Client(timeout=120.0)
    try:
        reply = http.get(url.rstrip("/") + "/v1/analytics/gaps", params=params,
                         headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    finally:
        if client is None:
            http.close()
    try:
        body: dict[str, Any] = reply.json()
    except ValueError:
        raise ValueError(f"HTTP {reply.status_code}: not a JSON reply") from None
    if reply.status_code != 200:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise ValueError(f"HTTP {reply.status_code}: {error.get('message', 'request failed')}")
    return body


def render(report: dict[str, Any]) -> str:
    lines = [f"{report['questions']} questions answered badly in the last {report['days']} days, "
             f"{len(report['topics'])} topics (similarity {report.get('similarity')})"]
    for i, t in enumerate(report["topics"], 1):
        lines.append("")
        lines.append(f"{i}. {t['questions'][0]}  [{t['count']} asked, {t['trend']}: {t['earlier']} then "
                     f"{t['recent']}; refused {t['refused']}, not grounded {t['ungrounded']}, "
                     f"rated down {t['downvoted']}]")
        lines.extend(f"   - {q}" for q in t["questions"][1:])
        for s in t["sections"]:
            edit = f"  (edit: {s['edit_url']})" if s["edit_url"] else ""
            lines.append(f"   > {s['heading'] or s['title'] or s['file_path']}: {s['url']}{edit}")
    return "\n".join(lines)


def gaps_command(url: str, days: int, book: str, as_json: bool) -> int:
    token = os.environ.get(ADMIN_TOKEN.name, "").strip()
    if not token:
        print(f"set {ADMIN_TOKEN.name} to the server's admin token")
        return USAGE
    try:
        report = fetch_gaps(url, token, days, book)
    except (httpx.HTTPError, ValueError) as exc:
        message = str(exc) or type(exc).__name__
        print(json.dumps({"error": message}) if as_json else f"gap report failed: {message}")
        return FAILED
    print(json.dumps(report, indent=2) if as_json else render(report))
    return OK
