"""Billing report pages (BIL-12, BIL-13) and their CSV and XLSX exports.

Thin: a form parses the parameters, `billing.reports` sums, the page shows one page of
rows; an export streams every row through the clients' CSV and XLSX writers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dates import MONTHS
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clientbase.accounts.models import User
from clientbase.billing import reports
from clientbase.billing.forms import StyledForm
from clientbase.billing.models import Invoice
from clientbase.clients.io import neutralise
from clientbase.clients.io_views import _download
from clientbase.core import clock
from clientbase.core.money import Money

PAGE_SIZE = 50
FIRST_YEAR, LAST_YEAR = 1900, 2999
SMALL = {"class": "form-control-sm"}
_ID = re.compile(r"[0-9]{1,18}")


# --- forms -------------------------------------------------------------------------------------


class AsOfForm(StyledForm):
    """The day a report is drawn up on (blank: today)."""

    as_of = forms.DateField(
        label=gettext_lazy("As of"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", **SMALL}, format="%Y-%m-%d"),
        error_messages={"invalid": gettext_lazy("Enter a date such as 2024-03-31.")},
    )

    def clean_as_of(self) -> dt.date | None:
        day = self.cleaned_data["as_of"]
        # The buckets reach 90 days back: year 1 would leave the calendar.
        if day is not None and not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise forms.ValidationError(
                gettext_lazy("Enter a date between the years %(first)s and %(last)s.")
                % {"first": FIRST_YEAR, "last": LAST_YEAR}
            )
        return day


class DebtorsForm(AsOfForm):
    """The day, and the manager whose debtors to list (blank: none, `none`: no manager)."""

    manager = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_manager(self) -> str:
        key = self.cleaned_data["manager"].strip()
        # ASCII digits only, and few enough for a database id: "²" or 10**30 would crash.
        if key and key != reports.NO_MANAGER and not _ID.fullmatch(key):
            raise forms.ValidationError(gettext_lazy("There is no such sales manager."))
        return key


class MonthForm(StyledForm):
    """A month of a year."""

    month = forms.TypedChoiceField(
        label=gettext_lazy("Month"),
        choices=list(MONTHS.items()),
        coerce=int,
        widget=forms.Select(attrs={"class": "form-select-sm"}),
        error_messages={"invalid_choice": gettext_lazy("Choose a month from 1 to 12.")},
    )
    year = forms.IntegerField(
        label=gettext_lazy("Year"),
        min_value=FIRST_YEAR,
        max_value=LAST_YEAR,
        widget=forms.NumberInput(attrs=SMALL),
        error_messages={"invalid": gettext_lazy("Enter a year such as 2024.")},
    )


def _bound(form_class, request: HttpRequest, defaults: dict[str, Any]):
    """The form filled from the query string, with defaults for what it leaves out."""
    return form_class(defaults | request.GET.dict())


def _as_of(form: AsOfForm) -> dt.date:
    return form.cleaned_data["as_of"] or clock.today()


def _page(request: HttpRequest, rows):
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def _query(request: HttpRequest, *leave_out: str) -> str:
    """The query string without the page number: what the export links carry."""
    params = request.GET.copy()
    for name in ("page", *leave_out):
        params.pop(name, None)
    return params.urlencode()


def _back_with_errors(request: HttpRequest, url_name: str) -> HttpResponse:
    """An export asked with bad parameters goes to its page, which says what is wrong."""
    query = request.GET.urlencode()
    return redirect(reverse(url_name) + (f"?{query}" if query else ""))


# --- export cells ------------------------------------------------------------------------------


def _amount(money: Money, fmt: str) -> str | float:
    """An amount in major units: exact decimal text in CSV, a number in XLSX."""
    if fmt == "csv":
        return f"{money.amount:f}"
    # An XLSX number cell is a binary double by the file format, whatever text we write; the
    # nearest double's shortest repr gives back the decimal exactly up to 15 digits.
    return float(money.amount)


def _text(value: str) -> str:
    return neutralise(value or "")


# --- pages -------------------------------------------------------------------------------------


@login_required
def report_index(request: HttpRequest) -> HttpResponse:
    """The billing reports, listed."""
    return render(request, "billing/reports/index.html", {"today": clock.today()})


@login_required
def report_aging(request: HttpRequest) -> HttpResponse:
    """Open balances per client in buckets by days past due, as of a day."""
    form = _bound(AsOfForm, request, {"as_of": clock.today().isoformat()})
    context: dict[str, Any] = {"form": form, "export_query": _query(request)}
    if form.is_valid():
        report = reports.aging(request.user, today=_as_of(form))
        context |= {"report": report, "page": _page(request, report.rows)}
    return render(request, "billing/reports/aging.html", context)


@login_required
def report_aging_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The aging report, every client and the totals, as CSV or XLSX."""
    form = _bound(AsOfForm, request, {"as_of": clock.today().isoformat()})
    if not form.is_valid():
        return _back_with_errors(request, "billing:report_aging")
    report = reports.aging(request.user, today=_as_of(form))
    header = [
        _("Client number"),
        _("Client"),
        _("Currency"),
        *(str(bucket.label) for bucket in reports.BUCKETS),
        _("Total"),
    ]
    rows = _aging_cells(report, fmt, header, _("Total"))
    return _download(rows, fmt, filename=f"aging-{report.today}", title=_("Aging"))


def _aging_cells(
    report: reports.AgingReport, fmt: str, header: list[str], total_label: str
) -> Iterator[list[Any]]:
    yield header
    for row in report.rows:
        yield [
            _text(row.client_number),
            _text(row.client_name),
            row.currency,
            *(_amount(amount, fmt) for amount in row.buckets),
            _amount(row.total, fmt),
        ]
    for totals in report.totals:
        yield [
            "",
            total_label,
            totals.currency,
            *(_amount(amount, fmt) for amount in totals.buckets),
            _amount(totals.total, fmt),
        ]


def _debtors_form(request: HttpRequest) -> DebtorsForm:
    return _bound(DebtorsForm, request, {"as_of": clock.today().isoformat(), "manager": ""})


def _manager_id(key: str) -> int | None:
    return None if key == reports.NO_MANAGER else int(key)


def _manager_label(key: str, debts: tuple[reports.ManagerDebt, ...]) -> str | None:
    """The drill-down's manager as people read it; None for a user who does not exist."""
    if key == reports.NO_MANAGER:
        return _("No sales manager")
    for debt in debts:
        if debt.manager_key == key:
            return debt.manager_name
    user = User.objects.filter(pk=int(key)).first()
    return user.display_name if user is not None else None


@login_required
def report_debtors(request: HttpRequest) -> HttpResponse:
    """What each sales manager's clients owe and how much is overdue; one manager's debtors."""
    form = _debtors_form(request)
    context: dict[str, Any] = {
        "form": form,
        "export_query": _query(request),
        "summary_query": _query(request, "manager"),
        "debts": None,
    }
    if form.is_valid():
        today = _as_of(form)
        debts = reports.debtors_by_manager(request.user, today=today)
        context |= {"today": today, "debts": debts}
        key = form.cleaned_data["manager"]
        if key:
            label = _manager_label(key, debts)
            if label is None:
                form.add_error("manager", _("There is no such sales manager."))
            else:
                clients = reports.debtor_clients(
                    request.user, today=today, manager_id=_manager_id(key)
                )
                context |= {"manager_key": key, "manager_label": label}
                context["page"] = _page(request, clients)
    return render(request, "billing/reports/debtors.html", context)


@login_required
def report_debtors_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The debts per manager, or with `manager` that manager's debtors, as CSV or XLSX."""
    form = _debtors_form(request)
    if not form.is_valid():
        return _back_with_errors(request, "billing:report_debtors")
    today = _as_of(form)
    key = form.cleaned_data["manager"]
    if key:
        clients = reports.debtor_clients(request.user, today=today, manager_id=_manager_id(key))
        header = [
            _("Client number"),
            _("Client"),
            _("Currency"),
            _("Open invoices"),
            _("Invoices overdue"),
            _("Amount overdue"),
            _("Total owed"),
            _("Oldest due date"),
        ]
        rows = _debtor_cells(clients, fmt, header)
        filename = f"debtors-{key}-{today}"
    else:
        debts = reports.debtors_by_manager(request.user, today=today)
        header = [
            _("Sales manager"),
            _("Currency"),
            _("Clients owing"),
            _("Invoices overdue"),
            _("Amount overdue"),
            _("Total owed"),
        ]
        rows = _manager_cells(debts, fmt, header, _("No sales manager"))
        filename = f"debtors-{today}"
    return _download(rows, fmt, filename=filename, title=_("Debtors"))


def _manager_cells(
    debts: tuple[reports.ManagerDebt, ...], fmt: str, header: list[str], nobody: str
) -> Iterator[list[Any]]:
    yield header
    for debt in debts:
        yield [
            _text(debt.manager_name) if debt.manager_id else nobody,
            debt.currency,
            debt.clients,
            debt.invoices_overdue,
            _amount(debt.overdue, fmt),
            _amount(debt.owed, fmt),
        ]


def _debtor_cells(
    clients: reports.Rows[reports.DebtorClient], fmt: str, header: list[str]
) -> Iterator[list[Any]]:
    yield header
    for client in clients:
        yield [
            _text(client.client_number),
            _text(client.client_name),
            client.currency,
            client.invoices_open,
            client.invoices_overdue,
            _amount(client.overdue, fmt),
            _amount(client.owed, fmt),
            client.oldest_due_on.isoformat(),
        ]


def _month_form(request: HttpRequest) -> MonthForm:
    today = clock.today()
    return _bound(MonthForm, request, {"year": today.year, "month": today.month})


def _next_month(year: int, month: int, step: int) -> dict[str, int]:
    index = year * 12 + month - 1 + step
    return {"year": index // 12, "month": index % 12 + 1}


@login_required
def report_month(request: HttpRequest) -> HttpResponse:
    """The invoices issued in a month, with their totals per currency."""
    form = _month_form(request)
    context: dict[str, Any] = {"form": form, "export_query": _query(request)}
    if form.is_valid():
        year, month = form.cleaned_data["year"], form.cleaned_data["month"]
        report = reports.invoices_of_month(request.user, year=year, month=month)
        context |= {
            "report": report,
            "page": _page(request, report.rows),
            "previous": _next_month(year, month, -1),
            "next": _next_month(year, month, 1),
        }
    return render(request, "billing/reports/month.html", context)


@login_required
def report_month_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The invoices of a month and their totals, as CSV or XLSX."""
    form = _month_form(request)
    if not form.is_valid():
        return _back_with_errors(request, "billing:report_month")
    year, month = form.cleaned_data["year"], form.cleaned_data["month"]
    report = reports.invoices_of_month(request.user, year=year, month=month)
    header = [
        _("Number"),
        _("Date"),
        _("Due date"),
        _("Client number"),
        _("Client"),
        _("Currency"),
        _("Total"),
        _("Tax"),
        _("Paid"),
        _("Balance due"),
        _("Status"),
    ]
    # Taken now: the rows are written after this view has returned, maybe in another language.
    statuses = {value: str(label) for value, label in Invoice.Status.choices}
    labels = {"total": _("Total without cancelled invoices")}
    rows = _month_cells(report, fmt, header, statuses, labels)
    return _download(rows, fmt, filename=f"invoices-{year}-{month:02d}", title=_("Invoices"))


def _month_cells(
    report: reports.MonthReport,
    fmt: str,
    header: list[str],
    statuses: dict[str, str],
    labels: dict[str, str],
) -> Iterator[list[Any]]:
    yield header
    for invoice in report.rows:
        yield [
            _text(invoice.number),
            invoice.issued_on.isoformat(),
            invoice.due_on.isoformat(),
            _text(invoice.client_number),
            _text(invoice.client_name),
            invoice.currency,
            _amount(invoice.total, fmt),
            _amount(invoice.tax, fmt),
            _amount(invoice.paid, fmt),
            _amount(invoice.balance, fmt),
            statuses[invoice.status],
        ]
    for totals in report.totals:
        yield [
            "",
            "",
            "",
            "",
            labels["total"],
            totals.currency,
            _amount(totals.total, fmt),
            _amount(totals.tax, fmt),
            _amount(totals.paid, fmt),
            _amount(totals.balance, fmt),
            "",
        ]
