"""Data of the reports module (filled by its own issue)."""
