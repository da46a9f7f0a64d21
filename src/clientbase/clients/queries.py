"""Reads of clients, always through visibility."""

from django.db.models import Q, QuerySet

from clientbase.clients.models import Client
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
