"""python -m runtime.healthcheck: exit 0 when this container's service reports SERVING.

Used by docker-compose health checks; the service is named by LECTERN_SERVICE.
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime.settings import PEERS, SERVICE


def main() -> int:
    name = SERVICE.read(os.environ)
    if not name:
        print("LECTERN_SERVICE is not set", file=sys.stderr)
        return 2
    port = PEERS[name].port_var.read(os.environ)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError as exc:
            print(f"{name}: {exc.code().name}", file=sys.stderr)
            return 1
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
