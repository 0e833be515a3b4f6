"""Quality evaluation (`lectern eval`): section-level retrieval metrics and answer checks on a QA set."""
