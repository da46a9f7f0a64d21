"""Reads of the marketing module: templates, the records a message is about, the SMS outbox."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from clientbase.billing.models import Invoice
from clientbase.clients.models import Client, Contact
from clientbase.clients.queries import clients_for
from clientbase.core.visibility import can_see, get_visible_or_404, visible
from clientbase.marketing.models import MessageTemplate, SmsMessage
from clientbase.sales.models import Deal, Lead


def templates(*, channel: str = "", active_only: bool = False) -> QuerySet[MessageTemplate]:
    """Message templates of a channel (or all), by channel and name."""
    rows = MessageTemplate.objects.select_related("updated_by")
    if channel:
        rows = rows.filter(channel=channel)
    if active_only:
        rows = rows.filter(active=True)
    return rows


@dataclass(frozen=True)
class Records:
    """The records a message is about, all within the sender's sight."""

    client: Client | None = None
    contact: Contact | None = None
    lead: Lead | None = None
    deal: Deal | None = None
    invoice: Invoice | None = None

    def as_kwargs(self) -> dict:
        return {
            "client": self.client,
            "contact": self.contact,
            "lead": self.lead,
            "deal": self.deal,
            "invoice": self.invoice,
        }

    @property
    def any(self) -> bool:
        return any(self.as_kwargs().values())


def records_for(
    user,
    *,
    client: int | None = None,
    contact: int | None = None,
    lead: int | None = None,
    deal: int | None = None,
    invoice: int | None = None,
) -> Records:
    """Load the records by id; one that is missing or out of the user's sight is a 404."""
    found = {}
    if client:
        found["client"] = get_visible_or_404(clients_for(user), user, pk=client)
    if contact:
        row = Contact.objects.select_related("client").filter(pk=contact).first()
        if row is None or not can_see(row.client, user):
            raise Http404(_("Not found."))
        found["contact"] = row
    if lead:
        found["lead"] = get_visible_or_404(Lead.objects.select_related("client"), user, pk=lead)
    if deal:
        found["deal"] = get_visible_or_404(
            Deal.objects.select_related("client", "lead", "stage"), user, pk=deal
        )
    if invoice:
        found["invoice"] = get_visible_or_404(
            Invoice.objects.select_related("client"), user, pk=invoice
        )
    return Records(**found)


def in_sight(record, user) -> bool:
    """Whether a record a message is about is within the user's sight (a contact via its client)."""
    if isinstance(record, Contact):
        record = record.client
    return can_see(record, user)


def example_clients(user, limit: int = 30) -> QuerySet[Client]:
    """The newest clients the user may see, to preview a template against."""
    return clients_for(user).order_by("-created_at", "-id")[:limit]


def example_leads(user, limit: int = 30) -> QuerySet[Lead]:
    """The newest leads the user may see, to preview a template against."""
    return visible(Lead.objects.all(), user).order_by("-id")[:limit]


def sms_outbox(user) -> QuerySet[SmsMessage]:
    """Text messages about clients or leads the user may see, or that they sent, newest first."""
    clients = clients_for(user).values("pk")
    leads = visible(Lead.objects.all(), user).values("pk")
    return SmsMessage.objects.select_related("client", "lead", "sent_by").filter(
        Q(client__in=clients) | Q(lead__in=leads) | Q(sent_by=user)
    )
