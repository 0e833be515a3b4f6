"""The HTTP gateway: the only public door, REST + Server-Sent Events over the gRPC services."""
