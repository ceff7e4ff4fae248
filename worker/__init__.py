"""The serving edge: checks keys, enforces limits and streams precomputed bytes."""
