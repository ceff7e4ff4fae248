"""Buckets: where published builds are read from (a folder, an HTTP origin or S3), the
in-memory cache in front of remote ones, and readers of a build's objects and shards."""
