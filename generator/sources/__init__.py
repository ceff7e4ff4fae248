"""Sources: the configured feeds (``sources.toml``), how each is fetched safely over an untrusted
internet, its parsing (RSS/Atom) and its per-source fetch state."""
