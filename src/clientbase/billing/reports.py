"""Billing reports (BIL-12, BIL-13): aging, debtors per manager, invoices of a month.

Every figure is summed by the database, grouped per currency (amounts in two currencies
never add up), over the invoices the user may see. Totals come back at once; the rows
per client or invoice come as `Rows`, which a page slices and an export streams.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from clientbase.billing.models import Invoice
from clientbase.billing.queries import invoices_for
from clientbase.core.money import Money

T = TypeVar("T")
STREAM_CHUNK = 2000


class Rows(Generic[T]):
    """Report rows read lazily: a page slices one page of them, an export streams them all."""

    def __init__(
        self, queryset: QuerySet, make: Callable[[dict[str, Any]], T], count: int | None = None
    ) -> None:
        self.queryset = queryset
        self._make = make
        # Known from the totals when they were summed anyway: saves a second pass of grouping.
        self._count = count

    def count(self) -> int:
        """How many rows there are (Paginator asks this)."""
        if self._count is None:
            self._count = self.queryset.count()
        return self._count

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._make(row) for row in self.queryset[index]]
        return self._make(self.queryset[index])

    def __iter__(self) -> Iterator[T]:
        return (self._make(row) for row in self.queryset.iterator(chunk_size=STREAM_CHUNK))


def _sum_if(condition: Q) -> Sum:
    """The balance of the invoices meeting the condition (0 if none)."""
    return Sum(
        Case(When(condition, then=F("balance_minor")), default=Value(0)),
        output_field=BigIntegerField(),
    )


def _count_if(condition: Q) -> Count:
    return Count(Case(When(condition, then=F("id"))))


def _open_owed(user):
    """The user's invoices that still owe money; values() of them group the reports."""
    return invoices_for(user).filter(status__in=Invoice.OPEN, balance_minor__gt=0)


# ------------------------------------------------------------------------------------- aging


@dataclass(frozen=True)
class Bucket:
    """A column of the aging report: invoices due this many days ago."""

    key: str
    label: Promise


BUCKETS: tuple[Bucket, ...] = (
    Bucket("current", _("Current")),
    Bucket("days_1_30", _("1–30 days")),
    Bucket("days_31_60", _("31–60 days")),
    Bucket("days_61_90", _("61–90 days")),
    Bucket("days_over_90", _("Over 90 days")),
)


def _bucket_conditions(today: dt.date) -> dict[str, Q]:
    """Which due dates fall in each bucket; an invoice due today is current, not overdue."""
    # Ranges of due_on rather than a difference of dates: the database compares a column
    # with constants (and may use its index), the same way on SQLite and PostgreSQL.

    def ago(days: int) -> dt.date:
        return today - dt.timedelta(days=days)

    return {
        "current": Q(due_on__gte=today),
        "days_1_30": Q(due_on__lt=today, due_on__gte=ago(30)),
        "days_31_60": Q(due_on__lt=ago(30), due_on__gte=ago(60)),
        "days_61_90": Q(due_on__lt=ago(60), due_on__gte=ago(90)),
        "days_over_90": Q(due_on__lt=ago(90)),
    }


def _aging_sums(today: dt.date) -> dict[str, Sum | Count]:
    """Per bucket the balance due, then the whole balance and the number of invoices."""
    sums: dict[str, Sum | Count] = {
        key: _sum_if(condition) for key, condition in _bucket_conditions(today).items()
    }
    return sums | {"total": Sum("balance_minor"), "invoices": Count("id")}


@dataclass(frozen=True)
class AgingRow:
    """What one client owes in one currency, per bucket."""

    client_id: int
    client_number: str
    client_name: str
    currency: str
    buckets: tuple[Money, ...]  # in the order of BUCKETS
    total: Money
    invoices: int


@dataclass(frozen=True)
class AgingTotals:
    """What all clients owe in one currency, per bucket."""

    currency: str
    buckets: tuple[Money, ...]
    total: Money
    clients: int
    invoices: int


@dataclass(frozen=True)
class AgingReport:
    """Open balances by how long ago they fell due, as of a day."""

    today: dt.date
    totals: tuple[AgingTotals, ...]
    rows: Rows[AgingRow]

    @property
    def buckets(self) -> tuple[Bucket, ...]:
        """The columns, in order."""
        return BUCKETS


def _moneys(row: dict[str, Any], currency: str) -> tuple[Money, ...]:
    return tuple(Money(row[bucket.key], currency) for bucket in BUCKETS)


def _aging_row(row: dict[str, Any]) -> AgingRow:
    currency = row["currency"]
    return AgingRow(
        client_id=row["client_id"],
        client_number=row["client__number"],
        client_name=row["client__name"],
        currency=currency,
        buckets=_moneys(row, currency),
        total=Money(row["total"], currency),
        invoices=row["invoices"],
    )


def aging(user, *, today: dt.date) -> AgingReport:
    """Open balances per client and currency, by days past due as of `today`, with totals."""
    owed = _open_owed(user)
    totals = tuple(
        AgingTotals(
            currency=row["currency"],
            buckets=_moneys(row, row["currency"]),
            total=Money(row["total"], row["currency"]),
            clients=row["clients"],
            invoices=row["invoices"],
        )
        for row in owed.values("currency")
        .annotate(**_aging_sums(today), clients=Count("client_id", distinct=True))
        .order_by("currency")
    )
    per_client = (
        owed.values("client_id", "client__number", "client__name", "currency")
        .annotate(**_aging_sums(today))
        .order_by("client__name", "client_id", "currency")
    )
    # Each row is a client in a currency: as many as the totals count clients per currency.
    count = sum(t.clients for t in totals)
    return AgingReport(today=today, totals=totals, rows=Rows(per_client, _aging_row, count))


# ----------------------------------------------------------------------------------- debtors

# Stands for the clients nobody manages, where a manager's id would go.
NO_MANAGER = "none"


@dataclass(frozen=True)
class ManagerDebt:
    """What the clients of one sales manager owe in one currency."""

    manager_id: int | None  # None: clients without a sales manager
    manager_name: str
    currency: str
    clients: int
    invoices_overdue: int
    overdue: Money
    owed: Money

    @property
    def manager_key(self) -> str:
        """The manager as the drill-down link names it."""
        return NO_MANAGER if self.manager_id is None else str(self.manager_id)


@dataclass(frozen=True)
class DebtorClient:
    """One client that owes money, in one currency."""

    client_id: int
    client_number: str
    client_name: str
    currency: str
    invoices_open: int
    invoices_overdue: int
    overdue: Money
    owed: Money
    oldest_due_on: dt.date


def _manager_name(row: dict[str, Any]) -> str:
    full = f"{row['client__sales_manager__first_name']} {row['client__sales_manager__last_name']}"
    return full.strip() or row["client__sales_manager__username"] or ""


def debtors_by_manager(user, *, today: dt.date) -> tuple[ManagerDebt, ...]:
    """Per sales manager (none last) and currency: clients owing, overdue and owed."""
    overdue = Q(due_on__lt=today)
    rows = (
        _open_owed(user)
        .values(
            "client__sales_manager_id",
            "client__sales_manager__username",
            "client__sales_manager__first_name",
            "client__sales_manager__last_name",
            "currency",
        )
        .annotate(
            clients=Count("client_id", distinct=True),
            invoices_overdue=_count_if(overdue),
            overdue=_sum_if(overdue),
            owed=Sum("balance_minor"),
        )
        .order_by(
            F("client__sales_manager__username").asc(nulls_last=True),
            "client__sales_manager_id",
            "currency",
        )
    )
    return tuple(
        ManagerDebt(
            manager_id=row["client__sales_manager_id"],
            manager_name=_manager_name(row) if row["client__sales_manager_id"] else "",
            currency=row["currency"],
            clients=row["clients"],
            invoices_overdue=row["invoices_overdue"],
            overdue=Money(row["overdue"], row["currency"]),
            owed=Money(row["owed"], row["currency"]),
        )
        for row in rows
    )


def _debtor(row: dict[str, Any]) -> DebtorClient:
    currency = row["currency"]
    return DebtorClient(
        client_id=row["client_id"],
        client_number=row["client__number"],
        client_name=row["client__name"],
        currency=currency,
        invoices_open=row["invoices_open"],
        invoices_overdue=row["invoices_overdue"],
        overdue=Money(row["overdue"], currency),
        owed=Money(row["owed"], currency),
        oldest_due_on=row["oldest_due_on"],
    )


def debtor_clients(user, *, today: dt.date, manager_id: int | None) -> Rows[DebtorClient]:
    """The clients of one sales manager (None: of none) that owe money, most overdue first."""
    overdue = Q(due_on__lt=today)
    rows = (
        _open_owed(user)
        .filter(client__sales_manager_id=manager_id)
        .values("client_id", "client__number", "client__name", "currency")
        .annotate(
            invoices_open=Count("id"),
            invoices_overdue=_count_if(overdue),
            overdue=_sum_if(overdue),
            owed=Sum("balance_minor"),
            oldest_due_on=Min("due_on"),
        )
        .order_by("currency", "-overdue", "-owed", "client__name", "client_id")
    )
    return Rows(rows, _debtor)


# ------------------------------------------------------------------------- invoices of a month


@dataclass(frozen=True)
class MonthInvoice:
    """One issued invoice of the month."""

    invoice_id: int
    number: str
    issued_on: dt.date
    due_on: dt.date
    client_id: int
    client_number: str
    client_name: str
    currency: str
    total: Money
    tax: Money
    paid: Money
    balance: Money
    status: str

    @property
    def status_label(self) -> str:
        """The status in the reader's language."""
        return str(Invoice.Status(self.status).label)


@dataclass(frozen=True)
class MonthTotals:
    """A month's invoices in one currency, summed without the cancelled ones (counted apart)."""

    currency: str
    invoices: int
    cancelled: int
    total: Money
    tax: Money
    paid: Money
    balance: Money


@dataclass(frozen=True)
class MonthReport:
    """The invoices issued in one month, with their totals per currency."""

    first_day: dt.date
    last_day: dt.date
    totals: tuple[MonthTotals, ...]
    rows: Rows[MonthInvoice]


def _month_invoice(row: dict[str, Any]) -> MonthInvoice:
    currency = row["currency"]
    return MonthInvoice(
        invoice_id=row["id"],
        number=row["number"],
        issued_on=row["issued_on"],
        due_on=row["due_on"],
        client_id=row["client_id"],
        client_number=row["client__number"],
        client_name=row["client__name"],
        currency=currency,
        total=Money(row["total_minor"], currency),
        tax=Money(row["tax_minor"], currency),
        paid=Money(row["paid_minor"], currency),
        balance=Money(row["balance_minor"], currency),
        status=row["status"],
    )


def invoices_of_month(user, *, year: int, month: int) -> MonthReport:
    """Invoices issued (drafts aside) from the first to the last day of the month, by number."""
    first_day = dt.date(year, month, 1)
    last_day = first_day.replace(day=calendar.monthrange(year, month)[1])
    issued = (
        invoices_for(user)
        .exclude(status=Invoice.Status.DRAFT)
        .filter(issued_on__gte=first_day, issued_on__lte=last_day)
    )
    billed = ~Q(status=Invoice.Status.CANCELLED)

    def billed_sum(field: str) -> Sum:
        return Sum(
            Case(When(billed, then=F(field)), default=Value(0)), output_field=BigIntegerField()
        )

    totals = tuple(
        MonthTotals(
            currency=row["currency"],
            invoices=row["invoices"],
            cancelled=row["cancelled"],
            total=Money(row["total"], row["currency"]),
            tax=Money(row["tax"], row["currency"]),
            paid=Money(row["paid"], row["currency"]),
            balance=Money(row["balance"], row["currency"]),
        )
        for row in issued.values("currency")
        .annotate(
            invoices=Count("id"),
            cancelled=_count_if(~billed),
            total=billed_sum("total_minor"),
            tax=billed_sum("tax_minor"),
            paid=billed_sum("paid_minor"),
            balance=billed_sum("balance_minor"),
        )
        .order_by("currency")
    )
    rows = issued.values(
        "id",
        "number",
        "issued_on",
        "due_on",
        "client_id",
        "client__number",
        "client__name",
        "currency",
        "total_minor",
        "tax_minor",
        "paid_minor",
        "balance_minor",
        "status",
    ).order_by("number_value", "id")
    return MonthReport(
        first_day=first_day,
        last_day=last_day,
        totals=totals,
        rows=Rows(rows, _month_invoice, sum(t.invoices for t in totals)),
    )
