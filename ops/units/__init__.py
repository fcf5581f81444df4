"""Field units: registry, status, positions from every source, and the nearest-unit ranking."""
