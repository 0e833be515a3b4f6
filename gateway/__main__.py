"""python -m gateway"""

from __future__ import annotations

import sys

import uvicorn

from gateway.app import create_app
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
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                access_log=False, timeout_graceful_shutdown=5, server_header=False)


if __name__ == "__main__":
    main()
