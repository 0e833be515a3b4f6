"""Vector index backends behind one interface (``base.VectorIndex``)."""
