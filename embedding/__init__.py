"""Text embedders behind one interface, shared by ingest (documents) and retrieval (queries).

The index records which embedder built it, so both sides must pick the same one.
"""
