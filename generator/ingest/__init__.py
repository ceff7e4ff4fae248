"""Ingest: fetch every source at once, extract indicators from every article, merge into the store."""
