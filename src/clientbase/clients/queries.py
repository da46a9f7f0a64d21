"""Reads of clients, always through visibility."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Prefetch, Q, QuerySet

from clientbase.clients.models import Client, DeferredAction, Note
from clientbase.core import clock
from clientbase.core.visibility import get_visible_or_404, visible


def clients_for(user) -> QuerySet[Client]:
    """The clients a user may see."""
    return visible(Client.objects.select_related("owner", "org_unit"), user)


def client_search(user, text: str) -> QuerySet[Client]:
    """Clients whose number, name, email or phone contains the text."""
    text = text.strip()
    found = clients_for(user)
    if text:
        found = found.filter(
            Q(number__iexact=text)
            | Q(name__icontains=text)
            | Q(email__icontains=text)
            | Q(phone__icontains=text)
        )
    return found


def client_get(user, pk: int) -> Client:
    """One client the user may see, or 404."""
    return get_visible_or_404(Client.objects.select_related("owner", "org_unit"), user, pk=pk)


@dataclass(frozen=True)
class NoteCounts:
    """How many notes a client got lately, as the profile shows them."""

    last_day: int
    last_two_months: int


def notes_of(user, client: Client) -> list[Note]:
    """A client's notes, important ones first, then newest; comments prefetched, oldest first."""
    comments = Prefetch(
        "comments", queryset=Note.objects.select_related("actor").order_by("created_at", "id")
    )
    found = visible(Note.objects.filter(client=client, parent=None), user)
    return list(
        found.select_related("actor")
        .prefetch_related(comments)
        .order_by("-important", "-created_at", "-id")
    )


def note_counts(client: Client) -> NoteCounts:
    """Notes (comments included) written on the client in the last 24 hours and two months."""
    now = clock.now()
    recent = Note.objects.filter(client=client)
    return NoteCounts(
        last_day=recent.filter(created_at__gte=now - dt.timedelta(days=1)).count(),
        last_two_months=recent.filter(created_at__gte=clock.months_before(now, 2)).count(),
    )


def note_get(user, client: Client, pk: int) -> Note:
    """One top-level note of a client the user may see, or 404."""
    return get_visible_or_404(Note.objects.filter(client=client, parent=None), user, pk=pk)


def deferred_actions_of(user, client: Client) -> list[DeferredAction]:
    """A client's deferred actions: pending first by day, then the latest done or failed."""
    found = visible(DeferredAction.objects.filter(client=client), user).select_related("created_by")
    pending = list(found.filter(state=DeferredAction.State.PENDING).order_by("due_on", "id"))
    finished = list(
        found.exclude(state=DeferredAction.State.PENDING).order_by("-executed_at", "-id")[:10]
    )
    return pending + finished


def deferred_action_get(user, client: Client, pk: int) -> DeferredAction:
    """One deferred action of a client the user may see, or 404."""
    return get_visible_or_404(DeferredAction.objects.filter(client=client), user, pk=pk)
