"""Clientbase: CRM and billing for service businesses."""

__version__ = "0.1.0"
