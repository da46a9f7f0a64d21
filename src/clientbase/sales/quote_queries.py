"""Reads of quotes and contracts, always scoped to what the user may see."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.http import Http404

from clientbase.core import clock
from clientbase.core.visibility import visible
from clientbase.sales.models import Contract, Quote

PAGE_SIZE = 50


def quotes_for(user) -> QuerySet[Quote]:
    """The quotes a user may see."""
    return visible(Quote.objects.all(), user)


def contracts_for(user) -> QuerySet[Contract]:
    """The contracts a user may see."""
    return visible(Contract.objects.all(), user)


def quote_get(user, pk: int) -> Quote:
    """One quote with what its card shows, or 404 when missing or out of sight."""
    quote = (
        quotes_for(user)
        .select_related("client", "lead", "deal", "owner", "approved_by", "invoice", "contract")
        .prefetch_related("lines")
        .filter(pk=pk)
        .first()
    )
    if quote is None:
        raise Http404
    return quote


def contract_get(user, pk: int) -> Contract:
    """One contract with what its card shows, or 404 when missing or out of sight."""
    contract = (
        contracts_for(user)
        .select_related("client", "deal", "owner", "template", "renewal_of")
        .prefetch_related("lines")
        .filter(pk=pk)
        .first()
    )
    if contract is None:
        raise Http404
    return contract


@dataclass(frozen=True)
class QuoteFilters:
    """What a quote list may be narrowed by; every field is optional."""

    stage: str = ""
    approval: str = ""
    owner: str = ""  # "me" or a user id
    client: int | None = None
    lead: int | None = None
    deal: int | None = None
    q: str = ""


def quote_list(user, filters: QuoteFilters = QuoteFilters()) -> QuerySet[Quote]:
    """Quotes in sight, newest first, with what a list row shows (one query)."""
    quotes = quotes_for(user).select_related("client", "lead", "owner")
    if filters.stage in Quote.Stage.values:
        quotes = quotes.filter(stage=filters.stage)
    if filters.approval in Quote.Approval.values:
        quotes = quotes.filter(approval=filters.approval)
    if filters.owner == "me":
        quotes = quotes.filter(owner=user)
    elif filters.owner.isdigit() and len(filters.owner) < 19:
        quotes = quotes.filter(owner_id=int(filters.owner))
    for name in ("client", "lead", "deal"):
        if getattr(filters, name):
            quotes = quotes.filter(**{f"{name}_id": getattr(filters, name)})
    text = filters.q.strip()
    if text:
        quotes = quotes.filter(
            Q(number__iexact=text) | Q(title__icontains=text) | Q(client__name__icontains=text)
        )
    return quotes.order_by("-issued_on", "-id")


@dataclass(frozen=True)
class ContractFilters:
    """What a contract list may be narrowed by."""

    status: str = ""
    client: int | None = None
    renew: bool = False  # active and ending this month
    q: str = ""


def month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of the month of `day`."""
    first = day.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def to_renew(user, day: dt.date | None = None) -> QuerySet[Contract]:
    """Active contracts in sight that end this month: the dashboard's "Contracts to renew"."""
    first, last = month_bounds(day or clock.today())
    return contracts_for(user).filter(
        status=Contract.Status.ACTIVE, ends_on__gte=first, ends_on__lte=last
    )


def contract_list(user, filters: ContractFilters = ContractFilters()) -> QuerySet[Contract]:
    """Contracts in sight, latest start first, with what a list row shows (one query)."""
    contracts = to_renew(user) if filters.renew else contracts_for(user)
    contracts = contracts.select_related("client", "owner")
    if filters.status in Contract.Status.values:
        contracts = contracts.filter(status=filters.status)
    if filters.client:
        contracts = contracts.filter(client_id=filters.client)
    text = filters.q.strip()
    if text:
        contracts = contracts.filter(
            Q(number__iexact=text) | Q(title__icontains=text) | Q(client__name__icontains=text)
        )
    return contracts.order_by("-starts_on", "-id")
