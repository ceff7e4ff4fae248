"""The worker's endpoints: one module per route family, each turning a request into
precomputed bytes (or a small envelope around them)."""
