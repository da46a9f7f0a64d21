"""Reads of leads, their duplicates, distribution and web forms, always through visibility."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from clientbase.clients.models import Client
from clientbase.clients.search import find_duplicates
from clientbase.core import clock
from clientbase.core.visibility import get_visible_or_404, scope_filter, visible
from clientbase.sales.models import Deal, DistributionLog, Lead, LeadContact, Quote

DUPLICATES_PER_FIELD = 3


def leads_for(user) -> QuerySet[Lead]:
    """Every lead the user may see, with what a row shows loaded."""
    return visible(Lead.objects.all(), user).select_related("owner", "stage", "client")


def lead_get(user, pk: int) -> Lead:
    """One lead in the user's sight, else 404."""
    return get_visible_or_404(
        Lead.objects.select_related("owner", "org_unit", "stage__pipeline", "client"), user, pk=pk
    )


def lead_contact_get(user, lead: Lead, pk: int) -> LeadContact:
    """One contact of a lead the user sees, else 404."""
    return get_visible_or_404(LeadContact.objects.filter(lead=lead), user, pk=pk)


@dataclass(frozen=True)
class LeadFilters:
    """What the lead list is narrowed to."""

    status: str = ""
    owner: str = ""  # "me", "none" or a user id
    source: str = ""
    campaign: str = ""
    q: str = ""


def lead_list(user, filters: LeadFilters, *, me=None) -> QuerySet[Lead]:
    """Leads the user may see, narrowed by the filters, newest first."""
    found = leads_for(user)
    if filters.status == "open":
        found = found.filter(status__in=("new", "in_progress", "appointment"))
    elif filters.status in Lead.Status.values:
        found = found.filter(status=filters.status)
    if filters.owner == "me":
        found = found.filter(owner=me or user)
    elif filters.owner == "none":
        found = found.filter(owner__isnull=True)
    elif filters.owner.isdigit():
        found = found.filter(owner_id=int(filters.owner))
    if filters.source:
        found = found.filter(source__iexact=filters.source)
    if filters.campaign:
        found = found.filter(campaign__iexact=filters.campaign)
    text = filters.q.strip()
    if text:
        condition = (
            Q(name__icontains=text)
            | Q(company__icontains=text)
            | Q(number__iexact=text)
            | Q(city__icontains=text)
        )
        if "@" in text:
            condition |= Q(email_key=text.lower())
        digits = "".join(c for c in text if c.isdigit())
        if len(digits) >= 6:
            condition |= Q(phone__contains=digits) | Q(tax_id__contains=digits)
        found = found.filter(condition)
    return found.order_by("-created_at", "-id")


def sources_and_campaigns(user) -> tuple[list[str], list[str]]:
    """The sources and campaigns of the leads in sight, for the list's filters."""
    base = visible(Lead.objects.all(), user).order_by()
    sources = base.exclude(source="").values_list("source", flat=True).distinct()
    campaigns = base.exclude(campaign="").values_list("campaign", flat=True).distinct()
    return sorted(sources[:200]), sorted(campaigns[:200])


def created_this_month(user) -> QuerySet[Lead]:
    """Leads created since the first of this month, in the user's sight."""
    start = clock.start_of_day(clock.today().replace(day=1))
    return visible(Lead.objects.filter(created_at__gte=start), user)


def deals_of(user, lead: Lead) -> list[Deal]:
    """The lead's deals the user may see."""
    return list(visible(lead.deals.select_related("stage"), user).order_by("-created_at"))


def quotes_of(user, lead: Lead) -> list[Quote]:
    """The lead's quotes the user may see."""
    return list(visible(Quote.objects.filter(lead=lead), user).order_by("-id"))


@dataclass(frozen=True)
class LeadDuplicate:
    """A lead or client that already has an identifier being entered."""

    kind: str  # "lead" | "client"
    record: Lead | Client
    field: str  # "email" | "phone" | "tax_id"
    visible: bool
    blocking: bool  # an email match: saving is refused


def lead_duplicates(
    user, *, email: str = "", phone: str = "", tax_id: str = "", exclude_id: int | None = None
) -> list[LeadDuplicate]:
    """Open leads and clients that share the email, phone or tax id (values normalised)."""
    found: list[LeadDuplicate] = []
    scope = scope_filter(Lead, user)
    given = {"email": email.lower(), "phone": phone, "tax_id": tax_id}
    for field, value in given.items():
        if not value:
            continue
        lookup = {"email_key": value} if field == "email" else {field: value}
        leads = Lead.objects.filter(**lookup).order_by("-id")
        if field == "email":
            leads = leads.filter(status__in=("new", "in_progress", "appointment"))
        if exclude_id:
            leads = leads.exclude(pk=exclude_id)
        leads = list(leads.only("id", "number", "name", "company", "owner", "org_unit")[:3])
        seen = (
            set(
                visible(Lead.objects.filter(pk__in=[x.pk for x in leads]), user).values_list(
                    "pk", flat=True
                )
            )
            if scope is not None and leads
            else {x.pk for x in leads}
        )
        found += [LeadDuplicate("lead", x, field, x.pk in seen, field == "email") for x in leads]
    for duplicate in find_duplicates(user=user, email=email, phone=phone, tax_id=tax_id):
        found.append(
            LeadDuplicate(
                "client",
                duplicate.client,
                duplicate.field,
                duplicate.visible,
                duplicate.field == "email",
            )
        )
    return found


def distribution_log(user) -> QuerySet[DistributionLog]:
    """Who got which lead, newest first, for the leads in the user's sight."""
    return visible(DistributionLog.objects.all(), user).select_related("lead", "rule", "assignee")
