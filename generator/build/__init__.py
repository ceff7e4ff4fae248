"""Build: the store's records rendered once into every precomputed answer (lists, exports,
TAXII, MISP feed, search shards, statistics), written as content-addressed objects."""
