"""Data of the support module (filled by its own issue)."""
