"""The newsfeed: one event per business action, written in the action's transaction."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from clientbase.core.models import Event, EventCategory
from clientbase.core.money import Money


@dataclass(frozen=True)
class EventType:
    """A kind of event: its category and the sentence that tells it."""

    code: str
    category: EventCategory
    message: Promise  # lazy, with %(name)s placeholders filled from the event's details
    # Turns stored details (codes, field names) into words of the reader's language.
    words: Callable[[dict], dict] | None = None


EVENT_TYPES: dict[str, EventType] = {}


def register_event_type(
    code: str,
    category: EventCategory,
    message: Promise,
    words: Callable[[dict], dict] | None = None,
) -> None:
    """Declare an event type once, at import of the module that records it."""
    EVENT_TYPES[code] = EventType(code, category, message, words)


def describe(event: Event) -> str:
    """The event's sentence in the active language."""
    kind = EVENT_TYPES.get(event.type)
    if kind is None:
        return event.type
    values = {**event.details}
    if kind.words is not None:
        values.update(kind.words(event.details))
    if event.amount is not None:
        values.setdefault("amount", str(event.amount))
    values.setdefault("reference", event.reference)
    try:
        return str(kind.message) % values
    except (KeyError, TypeError, ValueError):
        return str(kind.message)


def record_event(
    code: str,
    *,
    by,
    client=None,
    subject: models.Model | None = None,
    amount: Money | None = None,
    reference: str = "",
    details: dict[str, Any] | None = None,
) -> Event:
    """Append an event to the newsfeed; must run inside the action's own transaction."""
    event = new_event(
        code,
        by=by,
        client=client,
        subject=subject,
        amount=amount,
        reference=reference,
        details=details,
    )
    event.save()
    return event


def record_events(events: list[Event]) -> None:
    """Append many events made by `new_event` at once, for bulk actions."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events are recorded inside the transaction of their action")
    Event.objects.bulk_create(events, batch_size=1000)


def new_event(
    code: str,
    *,
    by,
    client=None,
    subject: models.Model | None = None,
    amount: Money | None = None,
    reference: str = "",
    details: dict[str, Any] | None = None,
) -> Event:
    """An unsaved event; `record_event` or `record_events` writes it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events are recorded inside the transaction of their action")
    kind = EVENT_TYPES[code]
    scope_source = client if client is not None else subject
    return Event(
        actor=by if getattr(by, "pk", None) else None,
        client=client,
        org_unit_id=getattr(scope_source, "org_unit_id", None),
        owner_id=getattr(scope_source, "owner_id", None),
        category=kind.category,
        type=code,
        amount_minor=amount.minor if amount is not None else None,
        currency=amount.currency if amount is not None else "",
        reference=reference,
        subject_type=ContentType.objects.get_for_model(subject) if subject is not None else None,
        subject_id=str(subject.pk) if subject is not None else "",
        details=details or {},
    )


register_event_type("user.created", EventCategory.SECURITY, _("User %(username)s created"))
register_event_type("user.changed", EventCategory.SECURITY, _("User %(username)s changed"))
register_event_type(
    "user.password_changed", EventCategory.SECURITY, _("Password of %(username)s changed")
)
TWO_FACTOR_METHODS = {"totp": _("authenticator app"), "email": _("code by email")}
register_event_type(
    "user.two_factor_enabled",
    EventCategory.SECURITY,
    _("Two-step login (%(method)s) turned on for %(username)s"),
    words=lambda details: {
        "method": TWO_FACTOR_METHODS.get(details.get("method"), details.get("method"))
    },
)
register_event_type(
    "user.two_factor_disabled",
    EventCategory.SECURITY,
    _("Two-step login turned off for %(username)s"),
)
register_event_type("user.unlocked", EventCategory.SECURITY, _("Login of %(username)s unlocked"))
register_event_type("token.created", EventCategory.SECURITY, _("API token %(name)s created"))
register_event_type("token.revoked", EventCategory.SECURITY, _("API token %(name)s revoked"))
