"""Push: a client's copy of a site synced to a book over the network, changed files only.

``files`` (what of a site ingest reads; the client uses it), ``paths`` and ``limits`` (what a
push may hold; both sides check), ``archive`` (the tar stream, read incrementally), ``store``
(plan, upload, apply, the per-book lease and the on-disk mirror)."""
