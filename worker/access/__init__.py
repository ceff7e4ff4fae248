"""Access: API keys (keyed hashes in SQLite), accounts and tiers of users, session tokens,
authentication of a request and cross-site refusal."""
