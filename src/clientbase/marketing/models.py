"""Data of the marketing module (filled by its own issue)."""
