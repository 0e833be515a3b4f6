"""The sessions service: the only owner of Postgres."""
