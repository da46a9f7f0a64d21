"""Billing reports (BIL-12, BIL-13): aging buckets, debtors per manager, invoices of a month,
their pages, exports and the scope of what each user sees."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse

from clientbase.billing import reports, services
from clientbase.clients.services import client_create
from clientbase.core.money import Money

from .conftest import eur, rub

pytestmark = pytest.mark.django_db

TODAY = dt.date(2024, 5, 15)


def ago(days: int) -> dt.date:
    """The day this many days before TODAY (negative: after it)."""
    return TODAY - dt.timedelta(days=days)


@pytest.fixture
def today(time_machine) -> dt.date:
    """Travel to 15 May 2024, the clock standing still."""
    time_machine.move_to(dt.datetime(2024, 5, 15, 9, tzinfo=dt.UTC), tick=False)
    return TODAY


@pytest.fixture
def managers(make_user) -> dict:
    """Two sales managers: Ann Lee (with a full name) and bob (login name only)."""
    return {
        "ann": make_user("ann", first_name="Ann", last_name="Lee"),
        "bob": make_user("bob", unit="team_b"),
    }


@pytest.fixture
def owe(issue):
    """Issue an invoice of one line due `days_ago` days before TODAY (issued a week earlier)."""

    def make(client, amount: str, days_ago: int):
        due_on = ago(days_ago)
        return issue(
            client, ("Services", amount), issued_on=due_on - dt.timedelta(days=7), due_on=due_on
        )

    return make


@pytest.fixture
def book(today, make_client, managers, owe, issue, pay, clerk) -> dict:
    """Three RUB debtors and one EUR debtor, with invoices in every bucket, and invoices that
    owe nothing: paid, cancelled, draft."""
    ann, bob = managers["ann"], managers["bob"]
    alpha = make_client("Alpha", sales_manager=ann)
    beta = make_client("Beta", sales_manager=ann)
    delta = make_client("Delta")
    gamma = make_client("Gamma", currency="EUR", country="FR", sales_manager=bob)
    owe(alpha, "1000.00", -5)  # not yet due
    owe(alpha, "500.00", 0)  # due today: current, not overdue
    owe(alpha, "300.00", 1)
    owe(alpha, "200.00", 30)
    owe(beta, "700.00", 31)
    partly = owe(beta, "400.00", 60)
    pay(beta, rub("150.00"), (partly, rub("150.00")))
    owe(beta, "90.00", 61)
    owe(delta, "1234.56", 90)
    owe(delta, "99.99", 91)
    owe(gamma, "50.00", 135)
    paid = owe(alpha, "800.00", 45)
    pay(alpha, rub("800.00"), paid)
    cancelled = owe(alpha, "60.00", 40)
    services.invoice_cancel(by=clerk, invoice=cancelled, reason="Issued twice")
    services.invoice_create(
        by=clerk, client=delta, lines=[services.LineSpec("Draft", Decimal("10.00"))]
    )
    services.invoices_mark_overdue(day=TODAY)
    return {"alpha": alpha, "beta": beta, "delta": delta, "gamma": gamma, **managers}


def _rub(*amounts: str) -> tuple[Money, ...]:
    return tuple(rub(a) for a in amounts)


# --- aging -------------------------------------------------------------------------------------


def test_aging_puts_each_balance_in_its_bucket_per_client_and_currency(book, clerk):
    # When the clerk draws the aging report up on 15 May
    report = reports.aging(clerk, today=TODAY)
    # Then each client's open balances land in the buckets, due today counting as current
    rows = [(r.client_name, r.currency, r.buckets, r.total, r.invoices) for r in report.rows]
    assert rows == [
        ("Alpha", "RUB", _rub("1500.00", "500.00", "0", "0", "0"), rub("2000.00"), 4),
        ("Beta", "RUB", _rub("0", "0", "950.00", "90.00", "0"), rub("1040.00"), 3),
        ("Delta", "RUB", _rub("0", "0", "0", "1234.56", "99.99"), rub("1334.55"), 2),
        ("Gamma", "EUR", (eur("0"),) * 4 + (eur("50.00"),), eur("50.00"), 1),
    ]
    # And the totals per currency add up the same buckets, never across currencies
    totals = [(t.currency, t.buckets, t.total, t.clients, t.invoices) for t in report.totals]
    assert totals == [
        ("EUR", (eur("0"),) * 4 + (eur("50.00"),), eur("50.00"), 1, 1),
        ("RUB", _rub("1500.00", "500.00", "950.00", "1324.56", "99.99"), rub("4374.55"), 3, 9),
    ]
    assert [b.key for b in report.buckets] == [
        "current", "days_1_30", "days_31_60", "days_61_90", "days_over_90"
    ]  # fmt: skip
    assert report.rows.count() == 4


def test_aging_moves_balances_on_as_the_days_pass(book, clerk):
    # When the same invoices are looked at a day later
    report = reports.aging(clerk, today=TODAY + dt.timedelta(days=1))
    # Then what was due today is a day overdue, and 30 days becomes 31
    alpha = next(r for r in report.rows if r.client_name == "Alpha")
    assert alpha.buckets == _rub("1000.00", "800.00", "200.00", "0", "0")
    delta = next(r for r in report.rows if r.client_name == "Delta")
    assert delta.buckets == _rub("0", "0", "0", "0", "1334.55")


# --- debtors per manager -----------------------------------------------------------------------


def test_debtors_per_manager_count_clients_overdue_invoices_and_amounts(book, clerk):
    debts = reports.debtors_by_manager(clerk, today=TODAY)
    assert [
        (d.manager_id, d.manager_name, d.currency, d.clients, d.invoices_overdue, d.overdue,
         d.owed)
        for d in debts
    ] == [
        (book["ann"].pk, "Ann Lee", "RUB", 2, 5, rub("1540.00"), rub("3040.00")),
        (book["bob"].pk, "bob", "EUR", 1, 1, eur("50.00"), eur("50.00")),
        (None, "", "RUB", 1, 2, rub("1334.55"), rub("1334.55")),
    ]  # fmt: skip
    assert [d.manager_key for d in debts] == [str(book["ann"].pk), str(book["bob"].pk), "none"]


def test_debtor_clients_of_one_manager_most_overdue_first(book, clerk):
    anns = list(reports.debtor_clients(clerk, today=TODAY, manager_id=book["ann"].pk))
    assert [
        (c.client_name, c.invoices_open, c.invoices_overdue, c.overdue, c.owed, c.oldest_due_on)
        for c in anns
    ] == [
        ("Beta", 3, 3, rub("1040.00"), rub("1040.00"), ago(61)),
        ("Alpha", 4, 2, rub("500.00"), rub("2000.00"), ago(30)),
    ]
    nobodys = list(reports.debtor_clients(clerk, today=TODAY, manager_id=None))
    assert [(c.client_name, c.owed) for c in nobodys] == [("Delta", rub("1334.55"))]


# --- invoices of a month -----------------------------------------------------------------------


@pytest.fixture
def march(today, make_client, issue, pay, clerk, vat_ru) -> dict:
    """Invoices issued around March 2024 (20 % VAT in Russia): two RUB, one EUR, one
    cancelled, one draft, one on each side of the month."""
    alpha = make_client("Alpha")
    beta = make_client("Beta")
    gamma = make_client("Gamma", currency="EUR", country="FR")

    def bill(client, amount: str, day: dt.date):
        return issue(client, ("Services", amount), issued_on=day, due_on=day)

    bill(alpha, "5.00", dt.date(2024, 2, 29))
    first = bill(alpha, "1000.00", dt.date(2024, 3, 1))
    second = bill(beta, "250.50", dt.date(2024, 3, 15))
    pay(beta, rub("100.00"), (second, rub("100.00")))
    cancelled = bill(alpha, "10.00", dt.date(2024, 3, 20))
    services.invoice_cancel(by=clerk, invoice=cancelled, reason="Wrong client")
    euro = bill(gamma, "50.00", dt.date(2024, 3, 31))
    bill(beta, "7.00", dt.date(2024, 4, 1))
    services.invoice_create(
        by=clerk,
        client=alpha,
        lines=[services.LineSpec("Draft", Decimal("10.00"))],
        issued_on=dt.date(2024, 3, 10),
    )
    return {"numbers": [first.number, second.number, cancelled.number, euro.number]}


def test_invoices_of_a_month_list_issued_invoices_with_totals_per_currency(march, clerk):
    report = reports.invoices_of_month(clerk, year=2024, month=3)
    assert (report.first_day, report.last_day) == (dt.date(2024, 3, 1), dt.date(2024, 3, 31))
    assert [
        (i.number, i.issued_on, i.client_name, i.total, i.tax, i.paid, i.balance, i.status)
        for i in report.rows
    ] == [
        (march["numbers"][0], dt.date(2024, 3, 1), "Alpha", rub("1200.00"), rub("200.00"),
         rub("0"), rub("1200.00"), "unpaid"),
        (march["numbers"][1], dt.date(2024, 3, 15), "Beta", rub("300.60"), rub("50.10"),
         rub("100.00"), rub("200.60"), "partially_paid"),
        (march["numbers"][2], dt.date(2024, 3, 20), "Alpha", rub("12.00"), rub("2.00"),
         rub("0"), rub("0"), "cancelled"),
        (march["numbers"][3], dt.date(2024, 3, 31), "Gamma", eur("50.00"), eur("0"),
         eur("0"), eur("50.00"), "unpaid"),
    ]  # fmt: skip
    # The cancelled invoice is listed but bills nothing: the sums leave it out
    assert [
        (t.currency, t.invoices, t.cancelled, t.total, t.tax, t.paid, t.balance)
        for t in report.totals
    ] == [
        ("EUR", 1, 0, eur("50.00"), eur("0"), eur("0"), eur("50.00")),
        ("RUB", 3, 1, rub("1500.60"), rub("250.10"), rub("100.00"), rub("1400.60")),
    ]


def test_a_month_without_invoices_is_empty(march, clerk):
    report = reports.invoices_of_month(clerk, year=2023, month=12)
    assert (report.rows.count(), report.totals) == (0, ())
    assert report.last_day == dt.date(2023, 12, 31)


# --- scope -------------------------------------------------------------------------------------


@pytest.fixture
def seller(make_user, clerk, owe):
    """A seller who sees only his own client, which owes 42.00 overdue by 10 days."""
    sam = make_user("sam", role="sales", unit="team_b")
    own = client_create(by=sam, name="Own Ltd", email="own@example.com", currency="RUB",
                        country="RU")  # fmt: skip
    invoice = owe(own, "42.00", 10)
    return {"user": sam, "client": own, "invoice": invoice}


def test_a_user_sees_in_no_report_the_invoices_of_clients_out_of_sight(book, seller, clerk):
    sam, own = seller["user"], seller["client"]
    aging = reports.aging(sam, today=TODAY)
    assert [(r.client_name, r.total) for r in aging.rows] == [("Own Ltd", rub("42.00"))]
    assert [(t.currency, t.total, t.clients) for t in aging.totals] == [("RUB", rub("42.00"), 1)]
    debts = reports.debtors_by_manager(sam, today=TODAY)
    assert [(d.manager_id, d.clients, d.overdue) for d in debts] == [(None, 1, rub("42.00"))]
    assert list(reports.debtor_clients(sam, today=TODAY, manager_id=book["ann"].pk)) == []
    assert [c.client_id for c in reports.debtor_clients(sam, today=TODAY, manager_id=None)] == [
        own.pk
    ]
    month = reports.invoices_of_month(sam, year=2024, month=4)
    assert [i.number for i in month.rows] == [seller["invoice"].number]
    assert [(t.currency, t.total) for t in month.totals] == [("RUB", rub("42.00"))]
    # While the clerk, who sees every client, finds it beside the others
    everyone = reports.aging(clerk, today=TODAY)
    assert [t.total for t in everyone.totals] == [eur("50.00"), rub("4416.55")]


def test_report_pages_and_exports_show_a_seller_only_his_clients(book, seller, signed_in):
    # Given a seller signed in, when he opens each report and its drill-down
    http = signed_in(seller["user"])
    pages = [
        http.get(reverse("billing:report_aging")),
        http.get(reverse("billing:report_debtors"), {"manager": "none"}),
        http.get(reverse("billing:report_month"), {"year": "2024", "month": "4"}),
    ]
    # Then his client is there and no other client, nor another manager, is named
    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert "Own Ltd" in html
        assert not any(other in html for other in ("Alpha", "Beta", "Delta", "Gamma", "Ann Lee"))
    body = b"".join(http.get("/billing/reports/aging.csv").streaming_content).decode()
    assert "Own Ltd" in body
    assert not any(other in body for other in ("Alpha", "Beta", "Delta", "Gamma"))


# --- pages -------------------------------------------------------------------------------------


@pytest.fixture
def clerk_http(clerk, signed_in):
    """The billing clerk, signed in to the test browser."""
    return signed_in(clerk)


def test_reports_index_links_the_three_reports(clerk_http):
    page = clerk_http.get(reverse("billing:reports"))
    assert page.status_code == 200
    for name in ("report_aging", "report_debtors", "report_month"):
        assert f'href="{reverse(f"billing:{name}")}"' in page.content.decode()


def test_report_pages_need_a_signed_in_user(client, db):
    for name in ("reports", "report_aging", "report_debtors", "report_month"):
        response = client.get(reverse(f"billing:{name}"))
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    response = client.get(reverse("billing:report_aging_export", kwargs={"fmt": "csv"}))
    assert response.status_code == 302


def test_aging_page_is_as_of_today_and_reads_a_fixed_number_of_queries(
    book, clerk_http, owe, make_client, django_assert_num_queries
):
    with django_assert_num_queries(6):
        page = clerk_http.get(reverse("billing:report_aging"))
    assert page.context["report"].today == TODAY
    assert [r.client_name for r in page.context["page"].object_list] == [
        "Alpha", "Beta", "Delta", "Gamma"
    ]  # fmt: skip
    html = page.content.decode()
    assert "RUB4,374.55" in html and "RUB1,324.56" in html
    assert 'href="/billing/reports/aging.xlsx"' in html
    # More debtors cost no more queries
    for name in ("Epsilon", "Zeta", "Eta"):
        owe(make_client(name), "1.00", 3)
    with django_assert_num_queries(6):
        more = clerk_http.get(reverse("billing:report_aging"))
    assert len(more.context["page"].object_list) == 7


def test_debtors_page_drills_down_to_one_managers_clients(
    book, clerk_http, django_assert_num_queries
):
    summary = clerk_http.get(reverse("billing:report_debtors"), {"as_of": "2024-05-15"})
    html = summary.content.decode()
    assert f"?as_of=2024-05-15&amp;manager={book['ann'].pk}" in html
    assert "No sales manager" in html
    with django_assert_num_queries(7):
        drill = clerk_http.get(
            reverse("billing:report_debtors"), {"as_of": "2024-05-15", "manager": book["ann"].pk}
        )
    assert drill.context["manager_label"] == "Ann Lee"
    assert [c.client_name for c in drill.context["page"].object_list] == ["Beta", "Alpha"]
    assert f"debtors.csv?as_of=2024-05-15&amp;manager={book['ann'].pk}" in drill.content.decode()


def test_month_page_defaults_to_this_month_and_links_its_neighbours(
    march, clerk_http, django_assert_num_queries
):
    page = clerk_http.get(reverse("billing:report_month"))
    assert (page.context["report"].first_day, page.context["page"].paginator.count) == (
        dt.date(2024, 5, 1),
        0,
    )
    with django_assert_num_queries(6):
        march_page = clerk_http.get(reverse("billing:report_month"), {"year": "2024", "month": "3"})
    html = march_page.content.decode()
    assert "?year=2024&amp;month=2" in html and "?year=2024&amp;month=4" in html
    assert [i.number for i in march_page.context["page"].object_list] == march["numbers"]
    january = clerk_http.get(reverse("billing:report_month"), {"year": "2024", "month": "1"})
    assert "?year=2023&amp;month=12" in january.content.decode()


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("report_month", {"year": "2024", "month": "13"}, "Choose a month from 1 to 12."),
        ("report_month", {"year": "2024", "month": "march"}, "Choose a month from 1 to 12."),
        ("report_month", {"year": "twenty", "month": "3"}, "Enter a year such as 2024."),
        ("report_month", {"year": "99999", "month": "3"}, "less than or equal to 2999"),
        ("report_aging", {"as_of": "not-a-date"}, "Enter a date such as 2024-03-31."),
        ("report_aging", {"as_of": "2024-02-30"}, "Enter a date such as 2024-03-31."),
        ("report_debtors", {"as_of": "15/05/2024"}, "Enter a date such as 2024-03-31."),
        ("report_debtors", {"manager": "ann"}, "There is no such sales manager."),
        ("report_debtors", {"manager": "987654"}, "There is no such sales manager."),
        ("report_debtors", {"manager": "²"}, "There is no such sales manager."),
        ("report_debtors", {"manager": "9" * 30}, "There is no such sales manager."),
        ("report_aging", {"as_of": "0001-01-01"}, "between the years 1900 and 2999"),
    ],
)
def test_bad_parameters_are_said_at_the_form(book, clerk_http, name, params, message):
    page = clerk_http.get(reverse(f"billing:{name}"), params)
    assert page.status_code == 200
    assert message in page.content.decode()
    assert "report" not in page.context or page.context["report"] is None
    assert page.context.get("page") is None


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("report_month", "year=2024&month=13"),
        ("report_aging", "as_of=not-a-date"),
        ("report_debtors", "manager=x"),
    ],
)
def test_an_export_with_bad_parameters_goes_back_to_its_page(clerk_http, name, params):
    response = clerk_http.get(
        reverse(f"billing:{name}_export", kwargs={"fmt": "xlsx"}) + "?" + params
    )
    assert response.status_code == 302
    assert response["Location"] == f"{reverse(f'billing:{name}')}?{params}"


# --- exports -----------------------------------------------------------------------------------


def _workbook_rows(response) -> list[tuple]:
    assert response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    return list(book.active.iter_rows(values_only=True))


def _exact(row: tuple) -> tuple:
    """Numbers read back from a workbook, as the exact decimals they were written as."""
    return tuple(Decimal(str(v)) if isinstance(v, float) else v for v in row)


def _csv_rows(response) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def test_aging_xlsx_is_a_workbook_of_the_report(book, clerk_http):
    response = clerk_http.get(reverse("billing:report_aging_export", kwargs={"fmt": "xlsx"}))
    assert response["Content-Disposition"] == 'attachment; filename="aging-2024-05-15.xlsx"'
    rows = [_exact(row) for row in _workbook_rows(response)]
    d = Decimal
    assert rows == [
        ("Client number", "Client", "Currency", "Current", "1–30 days", "31–60 days",
         "61–90 days", "Over 90 days", "Total"),
        (book["alpha"].number, "Alpha", "RUB", d("1500"), d("500"), d(0), d(0), d(0), d("2000")),
        (book["beta"].number, "Beta", "RUB", d(0), d(0), d("950"), d("90"), d(0), d("1040")),
        (book["delta"].number, "Delta", "RUB", d(0), d(0), d(0), d("1234.56"), d("99.99"),
         d("1334.55")),
        (book["gamma"].number, "Gamma", "EUR", d(0), d(0), d(0), d(0), d("50"), d("50")),
        (None, "Total", "EUR", d(0), d(0), d(0), d(0), d("50"), d("50")),
        (None, "Total", "RUB", d("1500"), d("500"), d("950"), d("1324.56"), d("99.99"),
         d("4374.55")),
    ]  # fmt: skip


def test_debtors_xlsx_per_manager_and_for_one_manager(book, clerk_http):
    url = reverse("billing:report_debtors_export", kwargs={"fmt": "xlsx"})
    rows = [_exact(row) for row in _workbook_rows(clerk_http.get(url))]
    assert rows == [
        ("Sales manager", "Currency", "Clients owing", "Invoices overdue", "Amount overdue",
         "Total owed"),
        ("Ann Lee", "RUB", 2, 5, Decimal("1540"), Decimal("3040")),
        ("bob", "EUR", 1, 1, Decimal("50"), Decimal("50")),
        ("No sales manager", "RUB", 1, 2, Decimal("1334.55"), Decimal("1334.55")),
    ]  # fmt: skip
    drill = [_exact(row) for row in _workbook_rows(clerk_http.get(url, {"manager": "none"}))]
    assert drill == [
        ("Client number", "Client", "Currency", "Open invoices", "Invoices overdue",
         "Amount overdue", "Total owed", "Oldest due date"),
        (book["delta"].number, "Delta", "RUB", 2, 2, Decimal("1334.55"), Decimal("1334.55"),
         "2024-02-14"),
    ]  # fmt: skip


def test_month_csv_has_exact_amounts_statuses_and_totals(march, clerk_http):
    response = clerk_http.get(
        reverse("billing:report_month_export", kwargs={"fmt": "csv"}), {"year": 2024, "month": 3}
    )
    assert response["Content-Disposition"] == 'attachment; filename="invoices-2024-03.csv"'
    first, second, cancelled, euro = march["numbers"]
    rows = _csv_rows(response)
    assert [row[:3] + row[4:] for row in rows] == [
        ["Number", "Date", "Due date", "Client", "Currency", "Total", "Tax", "Paid",
         "Balance due", "Status"],
        [first, "2024-03-01", "2024-03-01", "Alpha", "RUB", "1200.00", "200.00", "0.00",
         "1200.00", "Unpaid"],
        [second, "2024-03-15", "2024-03-15", "Beta", "RUB", "300.60", "50.10", "100.00",
         "200.60", "Partially paid"],
        [cancelled, "2024-03-20", "2024-03-20", "Alpha", "RUB", "12.00", "2.00", "0.00",
         "0.00", "Cancelled"],
        [euro, "2024-03-31", "2024-03-31", "Gamma", "EUR", "50.00", "0.00", "0.00", "50.00",
         "Unpaid"],
        ["", "", "", "Total without cancelled invoices", "EUR", "50.00", "0.00", "0.00",
         "50.00", ""],
        ["", "", "", "Total without cancelled invoices", "RUB", "1500.60", "250.10", "100.00",
         "1400.60", ""],
    ]  # fmt: skip


def test_month_xlsx_header_and_first_row(march, clerk_http):
    response = clerk_http.get(
        reverse("billing:report_month_export", kwargs={"fmt": "xlsx"}), {"year": 2024, "month": 3}
    )
    rows = [_exact(row) for row in _workbook_rows(response)]
    assert rows[0] == (
        "Number", "Date", "Due date", "Client number", "Client", "Currency", "Total", "Tax",
        "Paid", "Balance due", "Status",
    )  # fmt: skip
    assert rows[2][4:] == (
        "Beta", "RUB", Decimal("300.6"), Decimal("50.1"), Decimal("100"), Decimal("200.6"),
        "Partially paid",
    )  # fmt: skip
    assert len(rows) == 1 + 4 + 2


def test_a_client_named_like_a_formula_is_exported_inert(today, make_client, owe, clerk_http):
    owe(make_client("=cmd|' /C calc'!A0"), "10.00", 5)
    owe(make_client("@SUM(1+1)", email="sum@example.com"), "20.00", 5)
    rows = _csv_rows(clerk_http.get(reverse("billing:report_aging_export", kwargs={"fmt": "csv"})))
    assert sorted(row[1] for row in rows[1:-1]) == ["'=cmd|' /C calc'!A0", "'@SUM(1+1)"]
    xlsx = _workbook_rows(
        clerk_http.get(reverse("billing:report_aging_export", kwargs={"fmt": "xlsx"}))
    )
    assert sorted(row[1] for row in xlsx[1:-1]) == ["'=cmd|' /C calc'!A0", "'@SUM(1+1)"]
