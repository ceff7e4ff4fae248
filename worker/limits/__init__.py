"""Limits and metering: per-minute and per-day windows (SQLite, Redis, memory), what to do when
the limit store is down, and the usage log."""
