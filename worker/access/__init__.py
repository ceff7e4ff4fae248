"""Access: API keys (keyed hashes in SQLite, or in PostgreSQL shared by replicas), accounts and
tiers of users, session tokens, authentication of a request and cross-site refusal."""
