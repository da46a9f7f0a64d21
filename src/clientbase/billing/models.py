"""Data of the billing module (filled by its own issue)."""
