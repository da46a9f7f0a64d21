"""Reads of billing, always scoped to what the user may see."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from clientbase.billing.ledger import client_sums
from clientbase.billing.models import Invoice, LedgerEntry, Order, Payment, Refund, Service
from clientbase.clients.services import history_ids
from clientbase.core import clock
from clientbase.core.money import Money
from clientbase.core.visibility import visible


def invoices_for(user) -> QuerySet[Invoice]:
    return visible(Invoice.objects.select_related("client"), user)


def orders_for(user) -> QuerySet[Order]:
    return visible(Order.objects.select_related("client"), user)


def services_for(user) -> QuerySet[Service]:
    return visible(Service.objects.select_related("client", "product"), user)


def payments_for(user) -> QuerySet[Payment]:
    return visible(Payment.objects.select_related("client"), user)


def overdue_invoices(user) -> QuerySet[Invoice]:
    return invoices_for(user).filter(
        status__in=Invoice.OPEN, balance_minor__gt=0, due_on__lt=clock.today()
    )


def services_due(user, days: int = 14) -> QuerySet[Service]:
    horizon = clock.today() + dt.timedelta(days=days)
    return services_for(user).filter(
        status__in=("active", "suspended"), next_due_on__lte=horizon, cancel_at_period_end=False
    )


# Drafts have no number yet: they come last whichever way numbers sort, on both databases.
SORTS = {
    "number": (F("number_value").asc(nulls_last=True), "id"),
    "-number": (F("number_value").desc(nulls_last=True), "-id"),
    "cycle": (F("period_start").asc(nulls_last=True), "id"),
    "-cycle": (F("period_start").desc(nulls_last=True), "-id"),
    "overdue": ("-due_on", "id"),  # fewest days overdue first
    "-overdue": ("due_on", "id"),
    "amount": ("total_minor", "id"),
    "-amount": ("-total_minor", "-id"),
    "balance": ("balance_minor", "id"),
    "-balance": ("-balance_minor", "-id"),
}


@dataclass(frozen=True)
class BillSearch:
    """Criteria of the bills search (BIL-15)."""

    number: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    status: str = ""
    zero_balance: bool | None = None
    client_id: int | None = None
    last: int | None = None
    sort: str = "-number"


def _number_pattern(text: str) -> Q:
    """`72*` begins with 72, `*815` ends with 815, `7*5` both; without `*`, exact."""
    text = text.strip()
    if "*" not in text:
        return Q(number=text)
    parts = text.split("*")
    regex = "^" + ".*".join(re.escape(p) for p in parts) + "$"
    condition = Q(number__regex=regex)
    # A plain prefix or suffix lets the database use LIKE (and its index) first.
    if parts[0]:
        condition &= Q(number__startswith=parts[0])
    if parts[-1]:
        condition &= Q(number__endswith=parts[-1])
    return condition


def bills_search(user, criteria: BillSearch) -> QuerySet[Invoice]:
    """Invoices matching the criteria, sorted; `last` keeps the N most recent."""
    found = invoices_for(user)
    if criteria.client_id:
        found = found.filter(client_id=criteria.client_id)
    if criteria.number.strip():
        found = found.filter(_number_pattern(criteria.number))
    if criteria.date_from:
        found = found.filter(issued_on__gte=criteria.date_from)
    if criteria.date_to:
        found = found.filter(issued_on__lte=criteria.date_to)
    if criteria.status:
        found = found.filter(status=criteria.status)
    if criteria.zero_balance is True:
        found = found.filter(balance_minor=0)
    elif criteria.zero_balance is False:
        found = found.exclude(balance_minor=0)
    if criteria.last:
        recent = found.exclude(status="draft").order_by("-number_value")[: criteria.last]
        found = found.filter(pk__in=list(recent.values_list("pk", flat=True)))
    return found.order_by(*SORTS.get(criteria.sort, SORTS["-number"]))


@dataclass(frozen=True)
class BillingSummary:
    """The client's billing at a glance, as W's profile shows it."""

    currency: str
    paid: tuple[int, Money]
    unpaid: tuple[int, Money]
    cancelled: tuple[int, Money]
    refunded: tuple[int, Money]
    income: Money
    credit: Money
    owed: Money


def billing_summary(client) -> BillingSummary:
    """Counts and sums of the client's invoices, income, credit and what it owes."""
    ids = history_ids(client)
    currency = client.currency
    rows = (
        Invoice.objects.filter(client_id__in=ids, currency=currency)
        .exclude(status="draft")
        .values("status")
        .annotate(n=Count("id"), total=Sum("total_minor"), balance=Sum("balance_minor"))
    )
    by_status = {r["status"]: r for r in rows}

    def pick(*statuses, field="total"):
        n = sum(by_status.get(s, {}).get("n", 0) for s in statuses)
        total = sum(by_status.get(s, {}).get(field) or 0 for s in statuses)
        return n, Money(total, currency)

    received = Payment.objects.filter(client_id__in=ids, currency=currency).aggregate(
        s=Coalesce(Sum("amount_minor"), 0)
    )["s"]
    paid_out = Refund.objects.filter(
        client_id__in=ids, currency=currency, destination="out"
    ).aggregate(s=Coalesce(Sum("amount_minor"), 0))["s"]
    sums = client_sums(ids).get(currency, {"receivable": 0, "credit": 0})
    return BillingSummary(
        currency=currency,
        paid=pick("paid"),
        unpaid=pick(*Invoice.OPEN, field="balance"),
        cancelled=pick("cancelled"),
        refunded=pick("refunded"),
        income=Money(received - paid_out, currency),
        credit=Money(sums["credit"], currency),
        owed=Money(sums["receivable"], currency),
    )


def client_ledger(client) -> QuerySet[LedgerEntry]:
    """The client's ledger entries (its own and merged clients'), oldest first."""
    return LedgerEntry.objects.filter(client_id__in=history_ids(client)).order_by("seq")
