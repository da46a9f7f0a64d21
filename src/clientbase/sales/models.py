"""Data of the sales module (filled by its own issue)."""
