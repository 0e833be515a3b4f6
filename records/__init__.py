"""The records services exchange, one frozen dataclass per concept: a chunk of a book
(`records.chunk`), the version and locale it belongs to (`records.edition`), a book's sidebar
(`records.outline`), a section an answer cites (`records.source`), a question and its answer
(`records.turn`) and a question the book answered badly (`records.gap`).

Records know nothing of gRPC or of how a store keeps them. Each boundary has one converter each
way: `records.proto` for the protobuf contracts; retrieval's `index.payload` (chunks in the
vector index) and `outlines` (outline files) and the sessions store (sources and turns in
Postgres) for storage; the gateway's routes for HTTP JSON (`gateway.routes.chat.source_json`).
`tests/test_records.py` and `tests/test_records_sources.py` check that a field added to a
record, its message or its stored form is added to all of them.
"""
