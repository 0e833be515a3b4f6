"""The ingest service: turns a Docusaurus docs folder into chunks in the retrieval index."""
