"""The retrieval service: the only owner of the vector index."""
