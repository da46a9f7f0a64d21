"""Data of the client portal module (filled by its own issue)."""
