"""The shared service runtime: configuration, gRPC server bootstrap, health, reflection,
graceful shutdown, outgoing channels, error mapping, JSON logs and tracing.

Every Lectern service is built on this one package instead of carrying its own copy.
"""
