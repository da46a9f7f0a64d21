"""Reads of clients, always through visibility."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Prefetch, Q, QuerySet

from clientbase.clients import search
from clientbase.clients.models import Client, DeferredAction, Note
from clientbase.clients.services import history_ids
from clientbase.core import clock
from clientbase.core.models import Document, Event, EventCategory
from clientbase.core.visibility import get_visible_or_404, visible


def clients_for(user) -> QuerySet[Client]:
    """The clients a user may see."""
    return visible(Client.objects.select_related("owner", "org_unit"), user)


def client_search(user, text: str) -> QuerySet[Client]:
    """Clients the user may see with the text in their number, names, email, phone, tax ids
    or custom values (the trigram index of clients.search), newest first."""
    return search.client_search_queryset(user, text)


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
    found = visible(Note.objects.filter(client__in=history_ids(client), parent=None), user)
    return list(
        found.select_related("actor")
        .prefetch_related(comments)
        .order_by("-important", "-created_at", "-id")
    )


def note_counts(client: Client) -> NoteCounts:
    """Notes (comments included) written on the client in the last 24 hours and two months."""
    now = clock.now()
    recent = Note.objects.filter(client__in=history_ids(client))
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
    from clientbase.clients.services import deferred_action_summary

    for action in pending + finished:
        action.summary = deferred_action_summary(action)
    return pending + finished


def deferred_action_get(user, client: Client, pk: int) -> DeferredAction:
    """One deferred action of a client the user may see, or 404."""
    return get_visible_or_404(DeferredAction.objects.filter(client=client), user, pk=pk)


def newsfeed_of(
    user, client: Client, *, category: str = "", reference: str = ""
) -> QuerySet[Event]:
    """The account's history (clients merged into it included), newest first, filtered."""
    # A merged client's own "merged into" line would read oddly on the survivor's page.
    events = visible(Event.objects.filter(client__in=history_ids(client)), user).exclude(
        ~Q(client=client), type="client.merged_away"
    )
    if category in EventCategory.values:
        events = events.filter(category=category)
    if reference := reference.strip():
        events = events.filter(reference__iexact=reference)
    return events.select_related("actor").order_by("-occurred_at", "-id")


def documents_of(user, client: Client) -> QuerySet[Document]:
    """A client's documents and photos, newest first."""
    found = Document.objects.filter(client=client).select_related("uploaded_by")
    return visible(found, user).order_by("-uploaded_at", "-id")


def document_get(user, client: Client, pk: int) -> Document:
    """One document of a client the user may see, or 404."""
    return get_visible_or_404(Document.objects.filter(client=client), user, pk=pk)


@dataclass(frozen=True)
class GroupNode:
    """A company in a group tree, with its members below it."""

    client: Client
    depth: int
    visible: bool


def group_tree(user, client: Client) -> list[GroupNode]:
    """The group of companies the client belongs to, from its top parent down, in order.

    Companies outside the user's view are listed by number only (no link), so the shape of
    the group is clear without opening what the user may not see.
    """
    top, seen = client, {client.pk}
    while top.parent_id is not None and top.parent_id not in seen:
        parent = Client.objects.filter(pk=top.parent_id).first()
        if parent is None:
            break
        seen.add(parent.pk)
        top = parent
    group_ids = _group_ids(top)
    shown = set(clients_for(user).filter(pk__in=group_ids).values_list("pk", flat=True))
    nodes: list[GroupNode] = []

    def walk(node: Client, depth: int, members: dict[int | None, list[Client]]) -> None:
        nodes.append(GroupNode(node, depth, node.pk in shown))
        for member in members.get(node.pk, []):
            walk(member, depth + 1, members)

    members: dict[int | None, list[Client]] = {}
    for member in Client.objects.filter(pk__in=group_ids).exclude(pk=top.pk).order_by("name"):
        members.setdefault(member.parent_id, []).append(member)
    walk(top, 0, members)
    return nodes if len(nodes) > 1 else []


def _group_ids(top: Client, max_depth: int = 10) -> list[int]:
    """The ids of a company and its members at every level, level by level."""
    ids, level = [top.pk], [top.pk]
    for _depth in range(max_depth):
        level = list(Client.objects.filter(parent_id__in=level).values_list("pk", flat=True))
        if not level:
            break
        ids.extend(level)
    return ids
