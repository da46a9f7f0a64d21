"""The one error a service raises for bad input: a message per field, nothing saved."""

from django.core.exceptions import ValidationError


class ServiceError(ValidationError):
    """Refused business input; `message_dict` maps fields ("__all__" for none) to messages."""

    def __init__(self, message=None, *, field: str = "__all__", errors: dict | None = None):
        super().__init__(errors if errors is not None else {field: [message]})


class ConflictError(ServiceError):
    """Refused because the record changed meanwhile: reload and try again (HTTP 409)."""
