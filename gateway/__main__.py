"""python -m gateway"""

from __future__ import annotations

import contextlib
import sys

import uvicorn

from gateway.app import create_app
from gateway.server import uvicorn_config
from gateway.settings import GatewaySettings
from runtime import telemetry
from runtime.env import SettingsError
from runtime.logs import configure_logging


def main() -> None:
    try:
        settings = GatewaySettings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("gateway", settings.log_level)
    telemetry.configure_tracing("gateway", settings.otlp_endpoint)
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings))
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise SystemExit(3)  # could not start (port in use), as uvicorn.run reports it


if __name__ == "__main__":
    main()
