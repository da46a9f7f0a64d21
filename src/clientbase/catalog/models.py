"""Data of the catalogue module (filled by its own issue)."""
