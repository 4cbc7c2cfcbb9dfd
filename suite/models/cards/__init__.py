"""Package copy of models/*.toml (see suite/catalog.py)."""
