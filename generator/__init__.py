"""The batch side: ingest sources, extract indicators, keep the store, build and publish."""
