"""Test support for edgebench: things that stand in for hardware we do not have."""
