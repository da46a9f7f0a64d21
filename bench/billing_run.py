"""Benchmark: the billing run (BIL-4) over a large base, beside the same billing in raw SQL.

1. --clients clients holding --services active services (default 300,000 and 1,000,000),
   written by bulk inserts (COPY on PostgreSQL): a catalogue of ten products priced
   monthly, quarterly, semi-annually and annually in RUB, EUR and USD (two not taxable,
   one with tax-inclusive prices), tax rules for five countries and one US state, three
   recurring percent promo codes (one for two products only) on about 10 % of the
   services, clients in six countries, about 10 % of them invoiced per service
   (`separate_invoices`), 5 % of services in another currency than their client's, a
   billing address for 30 % of clients, and one client in a thousand holding credit.
   Every service is active and due on one of the 14 days up to the run day, so each is
   invoiced for exactly one period.
2. Baseline: the same invoices (numbers, lines with taxes and promo lines, billed periods,
   next dates, one event and one ledger row per invoice, one audit row per service)
   written by set-based SQL (INSERT … SELECT, UPDATE … FROM) in one transaction, timed,
   then rolled back, so the run finds the data untouched.
3. `billing_run_now(day=…, helpers=workers - 1)`: the run as `clientbase billing-run
   --workers N` does it, timed from start to the last helper's exit.
4. Exact checks afterwards: invoices, lines, billed periods, numbers gapless from 1, every
   service advanced by one period, events, audit entries, ledger entries and the hash
   chain, and the totals per currency equal to the baseline's.

On a PostgreSQL server with autovacuum turned off, a thread of the benchmark analyzes the
tables the run fills every 15 seconds, as autovacuum would (`analyzed_by_bench`).
Options: --workers (2), --chunk (BILLING_RUN_CHUNK), --day, --seed, --credit-clients,
--no-baseline; `--profile [FILE]` runs one worker under cProfile and prints the profile
to stderr, or writes its raw stats to FILE.
"""

import argparse
import contextlib
import cProfile
import datetime as dt
import os
import pstats
import random
import sys
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import CommandError
from django.db import connection, models, transaction

from clientbase.billing.calc import add_months
from clientbase.billing.ledger import Posting, ledger_post, ledger_verify
from clientbase.billing.models import (
    BilledPeriod,
    BillingRun,
    Invoice,
    InvoiceLine,
    LedgerEntry,
    Service,
)
from clientbase.billing.run import RENEWING, billing_run_now, days_in_advance
from clientbase.catalog.models import CYCLE_MONTHS, Cycle, Price, Product, PromoCode, TaxRule
from clientbase.clients.models import Address, Client
from clientbase.core import clock
from clientbase.core.demo import ensure_demo_org
from clientbase.core.demo_clients import roomy_sqlite_cache
from clientbase.core.models import AuditEntry, Event
from clientbase.core.money import Money

DEFAULT_CLIENTS = 300_000
DEFAULT_SERVICES = 1_000_000
DEFAULT_DAY = dt.date(2026, 11, 21)
TARGET_INVOICES_PER_S = 1000
BATCH = 50_000

# code, name, monthly price in RUB, EUR and USD minor units, taxable, tax-inclusive
PRODUCTS = [
    ("hosting-basic", "Hosting Basic", 35_000, 499, 549, True, False),
    ("hosting-pro", "Hosting Pro", 99_000, 1_299, 1_399, True, False),
    ("vps-small", "VPS Small", 59_000, 799, 899, True, False),
    ("vps-large", "VPS Large", 249_000, 2_999, 3_299, True, False),
    ("domain", "Domain name", 1_500, 99, 119, False, False),
    ("ssl", "SSL certificate", 4_900, 299, 349, True, False),
    ("backup", "Off-site backup", 19_000, 249, 279, True, False),
    ("mail", "Business mail", 12_500, 199, 219, True, False),
    ("panel", "Control panel licence", 45_000, 650, 700, True, True),
    ("support", "Priority support", 150_000, 1_999, 2_199, False, False),
]
CURRENCIES = ("RUB", "EUR", "USD")
# Per cycle: its weight among services and the discount on twelve months of monthly price.
CYCLES = {
    Cycle.MONTHLY: (50, 100),
    Cycle.QUARTERLY: (20, 97),
    Cycle.SEMI_ANNUAL: (15, 94),
    Cycle.ANNUAL: (15, 90),
}
# country, weight, currency, language, cities; US clients in CA pay the state's tax.
COUNTRIES = [
    ("RU", 40, "RUB", "ru", ("Москва", "Казань", "Новосибирск")),
    ("FR", 15, "EUR", "fr", ("Paris", "Lyon", "Lille")),
    ("DE", 12, "EUR", "en", ("Berlin", "Hamburg", "München")),
    ("GB", 8, "EUR", "en", ("London", "Leeds", "Bristol")),
    ("US", 15, "USD", "en", ("Sacramento", "Austin", "Boston")),
    ("VN", 10, "USD", "vi", ("Hà Nội", "Đà Nẵng", "Huế")),
]
TAX_RULES = [  # country, region, rate %
    ("RU", "", "20.000"),
    ("FR", "", "20.000"),
    ("DE", "", "19.000"),
    ("VN", "", "10.000"),
    ("GB", "", "20.000"),
    ("US", "CA", "7.250"),
]
# code, percent, products it is limited to (none: all)
PROMOS = [("SAVE5", "5.00", ()), ("SAVE10", "10.00", ()), ("HOSTING15", "15.00", (0, 1))]
CREDIT_MINOR = 100_000_000  # a million roubles, euros or dollars: pays all of the invoices


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


# ----------------------------------------------------------------------------- data


@dataclass
class Expected:
    """What the run must produce, counted while the data is generated."""

    clients: int = 0
    services: int = 0
    invoices: int = 0
    lines: int = 0
    separate_clients: int = 0
    promo_services: int = 0
    credit_clients: int = 0
    credit_applied: int = 0
    ledger_before: int = 0


def _insert(model: type[models.Model], fields: tuple[str, ...], rows: list[tuple]) -> None:
    """Rows of database-ready values for `fields`; every other column gets its default."""
    meta = model._meta
    named = [meta.get_field(name) for name in fields]
    rest = [f for f in meta.concrete_fields if not f.primary_key and f not in named]
    defaults = tuple(f.get_db_prep_save(f.get_default(), connection) for f in rest)
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = ", ".join(quote(f.column) for f in named + rest)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row + defaults)
        else:
            marks = ", ".join(["%s"] * (len(named) + len(rest)))
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                [row + defaults for row in rows],
            )


def _catalogue() -> tuple[list[Product], dict, list[PromoCode]]:
    """Products with prices in every currency and cycle, tax rules and promo codes."""
    products, prices = [], {}
    for code, name, rub, eur, usd, taxable, inclusive in PRODUCTS:
        product = Product.objects.create(
            code=code, name=name, taxable=taxable, tax_inclusive=inclusive
        )
        products.append(product)
        for currency, monthly in zip(CURRENCIES, (rub, eur, usd), strict=True):
            for cycle, (_weight, share) in CYCLES.items():
                amount = monthly * CYCLE_MONTHS[cycle] * share // 100
                Price.objects.create(
                    product=product, currency=currency, cycle=cycle, amount_minor=amount
                )
                prices[product.pk, cycle, currency] = amount
    for country, region, rate in TAX_RULES:
        TaxRule.objects.create(name=f"VAT {country}{region}", country=country, region=region,
                               rate=rate)  # fmt: skip
    promos = []
    for code, percent, only in PROMOS:
        promo = PromoCode.objects.create(code=code, kind="percent", percent=percent,
                                         recurring=True)  # fmt: skip
        promo.products.set([products[i] for i in only])
        promos.append(promo)
    return products, prices, promos


def generate(clients: int, services: int, day: dt.date, seed: int, credit_clients: int) -> Expected:
    """Clients, addresses and due services by bulk inserts; what the run must produce."""
    if services < clients or services > clients * len(PRODUCTS):
        raise CommandError(
            f"--services must be between --clients and {len(PRODUCTS)} times --clients"
        )
    rng = random.Random(seed)
    org = ensure_demo_org()
    owners = [(u.pk, u.org_unit_id) for u in org.users.values()]
    products, prices, promos = _catalogue()
    promo_products = [{products[i].pk for i in only} for _c, _p, only in PROMOS]
    expected = Expected(clients=clients, services=services)
    ops = connection.ops
    created = ops.adapt_datetimefield_value(clock.now())

    # Services per client: one each, the rest spread at random (at most one per product).
    counts = [1] * clients
    extra = services - clients
    while extra:
        i = rng.randrange(clients)
        if counts[i] < len(PRODUCTS):
            counts[i] += 1
            extra -= 1

    countries = [c for c in COUNTRIES for _n in range(c[1])]
    cycles = [c for c, (weight, _share) in CYCLES.items() for _n in range(weight)]
    credit = set(rng.sample(range(clients), min(credit_clients, clients)))
    expected.credit_clients = len(credit)
    first_id = (Client.everything.aggregate(m=models.Max("id"))["m"] or 0) + 1
    client_fields = ("number", "kind", "name", "company_name", "email", "country", "currency",
                     "language", "street", "postcode", "city", "separate_invoices",
                     "tax_exempt", "owner", "org_unit", "created_at")  # fmt: skip
    address_fields = ("client", "type", "line1", "postcode", "city", "region", "country")
    service_fields = ("client", "product", "cycle", "quantity", "currency", "recurring_minor",
                      "promo", "status", "registered_on", "period_start", "next_due_on",
                      "reprice_at_renewal")  # fmt: skip
    credit_of: dict[int, str] = {}
    with roomy_sqlite_cache():
        for start in range(0, clients, BATCH):
            client_rows, address_rows, service_rows = [], [], []
            for i in range(start, min(start + BATCH, clients)):
                client_id = first_id + i
                country, _w, currency, language, cities = rng.choice(countries)
                owner_id, unit_id = owners[i % len(owners)]
                separate = rng.random() < 0.10
                city = rng.choice(cities)
                client_rows.append((
                    f"B{i + 1:07d}", "company", f"Bench client {i + 1}", f"Bench client {i + 1}",
                    f"client{i + 1}@bench.example", country, currency, language,
                    f"{rng.randint(1, 200)} Main street", f"{rng.randint(10000, 99999)}", city,
                    separate, rng.random() < 0.02, owner_id, unit_id, created,
                ))  # fmt: skip
                if rng.random() < 0.30:
                    region = rng.choice(("CA", "NY")) if country == "US" else ""
                    address_rows.append((client_id, "billing", f"{rng.randint(1, 99)} Billing road",
                                         f"{rng.randint(10000, 99999)}", city, region, country))  # fmt: skip
                currencies, in_own_currency = set(), 0
                for product_index in rng.sample(range(len(PRODUCTS)), counts[i]):
                    product = products[product_index]
                    cycle = rng.choice(cycles)
                    cur = currency if rng.random() < 0.95 else rng.choice(CURRENCIES)
                    due = day - dt.timedelta(days=rng.randint(0, 13))
                    promo = rng.choice(promos) if rng.random() < 0.10 else None
                    if promo is not None:
                        allowed = promo_products[promos.index(promo)]
                        if not allowed or product.pk in allowed:
                            expected.promo_services += 1
                    service_rows.append((
                        client_id, product.pk, cycle, 1, cur, prices[product.pk, cycle, cur],
                        promo.pk if promo else None, "active",
                        ops.adapt_datefield_value(add_months(due, -12)),
                        ops.adapt_datefield_value(add_months(due, -CYCLE_MONTHS[cycle])),
                        ops.adapt_datefield_value(due),
                        rng.random() < 0.01,
                    ))  # fmt: skip
                    currencies.add(cur)
                    in_own_currency += cur == currency
                invoices = counts[i] if separate else len(currencies)
                expected.invoices += invoices
                expected.separate_clients += separate
                if i in credit:
                    credit_of[client_id] = currency
                    # Credit pays every invoice in the currency it is held in.
                    expected.credit_applied += (
                        in_own_currency if separate else min(1, in_own_currency)
                    )
            with transaction.atomic():
                _insert(Client, client_fields, client_rows)
                _insert(Address, address_fields, address_rows)
                _insert(Service, service_fields, service_rows)
    expected.lines = services + expected.promo_services
    # Credit held by one client in a thousand, posted through the ledger (its own chain).
    with transaction.atomic():
        holders = {
            c.pk: SimpleNamespace(owner_id=c.owner_id, org_unit_id=c.org_unit_id)
            for c in Client.everything.filter(pk__in=credit_of).only("owner", "org_unit")
        }
        ledger_post(
            [
                Posting(pk, LedgerEntry.Account.CREDIT, LedgerEntry.Kind.TOP_UP,
                        Money(-CREDIT_MINOR, cur), None, "bench credit")
                for pk, cur in sorted(credit_of.items())
            ],
            by=None,
            owner_of=None,
            owners=holders,
        )  # fmt: skip
    expected.ledger_before = LedgerEntry.objects.count()
    _analyze()
    return expected


def _analyze() -> None:
    """Fresh statistics; no dead rows (PostgreSQL) or write-ahead log (SQLite) left over."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")
        else:
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class _Autoanalyze:
    """ANALYZE of the tables the run fills, every few seconds, where autovacuum is off.

    The tables are analyzed while empty, and PostgreSQL plans the foreign-key checks at
    each commit (and the run's own lookups) from those statistics: with nobody to analyze
    them again, every check becomes a sequential scan of a table that grows by the
    second. autovacuum, on by default, analyzes a table after it changed by a tenth; this
    stands in for it on a server where it was turned off.
    """

    TABLES = (Invoice, InvoiceLine, BilledPeriod, LedgerEntry, Event, AuditEntry, Service)

    def __init__(self, every: float = 15.0) -> None:
        self.every, self.runs = every, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "_Autoanalyze":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def _loop(self) -> None:
        tables = ", ".join(_table(model) for model in self.TABLES)
        try:
            while not self.stop.wait(self.every):
                with connection.cursor() as cursor:
                    cursor.execute(f"ANALYZE {tables}")
                self.runs += 1
        finally:
            connection.close()


def _autovacuum_on() -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        return cursor.fetchone()[0] == "on"


# ----------------------------------------------------------------------------- baseline


def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _insert_select(
    model: type[models.Model],
    given: dict[str, str],
    from_sql: str,
    select_params: list | tuple = (),
    from_params: list | tuple = (),
) -> tuple[str, list]:
    """INSERT … SELECT of `given` column expressions; the other columns get their defaults.

    `select_params` fill the placeholders of the `given` expressions, in their order.
    """
    meta = model._meta
    named = list(given)
    fields = [f for f in meta.concrete_fields if not f.primary_key and f.column not in named]
    defaults = [f.get_db_prep_save(f.get_default(), connection) for f in fields]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in named + [f.column for f in fields])
    values = ", ".join([*given.values(), *(["%s"] * len(fields))])
    sql = f"INSERT INTO {_table(model)} ({columns}) SELECT {values} {from_sql}"
    return sql, [*select_params, *defaults, *from_params]


def _sql_dialect() -> SimpleNamespace:
    if connection.vendor == "postgresql":
        return SimpleNamespace(
            add_months=lambda day, months: f"CAST({day} + {months} * INTERVAL '1 month' AS date)",
            day_before=lambda day: f"CAST({day} - 1 AS date)",
            ddmmyyyy=lambda day: f"to_char({day}, 'DD/MM/YYYY')",
            obj=lambda *pairs: f"json_build_object({', '.join(pairs)})",
            jsonb=lambda value: f"CAST({value} AS jsonb)",
        )
    return SimpleNamespace(
        # SQLite rolls 31 January + 1 month over to March: the month's last day caps it.
        add_months=lambda day, months: (
            f"min(date({day}, '+' || {months} || ' months'), "
            f"date({day}, 'start of month', '+' || ({months} + 1) || ' months', '-1 day'))"
        ),
        day_before=lambda day: f"date({day}, '-1 day')",
        ddmmyyyy=lambda day: f"strftime('%%d/%%m/%%Y', {day})",
        obj=lambda *pairs: f"json_object({', '.join(pairs)})",
        jsonb=lambda value: value,
    )


def _half_up_tax(amount: str, inclusive: str, rate: str) -> str:
    """Tax on a non-negative amount in minor units at `rate` thousandths of a percent."""
    return (
        f"(CASE WHEN {inclusive} THEN (2 * {amount} * {rate} + 100000 + {rate}) "
        f"/ (2 * (100000 + {rate})) ELSE ({amount} * {rate} + 50000) / 100000 END)"
    )


TEMP_TABLES = ("bench_map", "bench_inv", "bench_lines", "bench_due")


def _baseline_statements(bill_until: str, day: str, now) -> list[tuple[str, list]]:
    """The billing of every due service as set-based SQL, in the order it runs."""
    sql = _sql_dialect()
    months = "CASE s.cycle " + " ".join(
        f"WHEN '{cycle}' THEN {CYCLE_MONTHS[cycle]}" for cycle in RENEWING
    ) + " END"  # fmt: skip
    renewing = ", ".join(f"'{c}'" for c in RENEWING)
    promo_product = _table(PromoCode.products.through)
    country = "UPPER(COALESCE(NULLIF(a.country, ''), c.country))"
    service_type = ContentType.objects.get_for_model(Service).pk
    invoice_type = ContentType.objects.get_for_model(Invoice).pk
    # The due services with their client's tax rate (in thousandths of a percent) and the
    # promo discount, as `_Taxes.rate` and `service_lines` find them.
    due = f"""CREATE TEMP TABLE bench_due AS
        SELECT s.id AS service_id, s.client_id, s.currency,
            CASE WHEN c.separate_invoices THEN s.id ELSE 0 END AS split,
            p.name AS product_name, p.taxable, p.tax_inclusive AS inclusive,
            s.recurring_minor AS gross,
            CASE WHEN c.tax_exempt OR {country} = '' THEN 0 ELSE
                CAST(ROUND(COALESCE(rr.rate, cr.rate, 0) * 1000) AS bigint) END AS rate,
            CASE WHEN pr.id IS NOT NULL AND pr.recurring AND pr.kind = 'percent' AND (
                NOT EXISTS (SELECT 1 FROM {promo_product} pp WHERE pp.promocode_id = pr.id)
                OR EXISTS (SELECT 1 FROM {promo_product} pp
                           WHERE pp.promocode_id = pr.id AND pp.product_id = s.product_id))
              THEN (s.recurring_minor * CAST(ROUND(pr.percent * 100) AS bigint) + 5000) / 10000
              ELSE 0 END AS discount,
            pr.code AS promo_code,
            s.next_due_on AS start, {sql.add_months("s.next_due_on", months)} AS following,
            c.owner_id, c.org_unit_id
        FROM {_table(Service)} s
        JOIN {_table(Client)} c ON c.id = s.client_id
        JOIN {_table(Product)} p ON p.id = s.product_id
        LEFT JOIN {_table(PromoCode)} pr ON pr.id = s.promo_id
        LEFT JOIN (SELECT client_id, MIN(id) AS id FROM {_table(Address)}
                   GROUP BY client_id) fa ON fa.client_id = c.id
        LEFT JOIN {_table(Address)} a ON a.id = fa.id
        LEFT JOIN {_table(TaxRule)} rr ON rr.country = {country} AND rr.region <> ''
            AND LOWER(rr.region) = LOWER(COALESCE(a.region, ''))
        LEFT JOIN {_table(TaxRule)} cr ON cr.country = {country} AND cr.region = ''
        WHERE s.status IN ('active', 'suspended') AND s.next_due_on <= %s
            AND NOT s.cancel_at_period_end AND s.cycle IN ({renewing})
            AND c.merged_into_id IS NULL AND c.deleted_at IS NULL"""
    lines = f"""CREATE TEMP TABLE bench_lines AS
        SELECT d.*, CASE WHEN d.taxable THEN d.rate ELSE 0 END AS line_rate,
            CASE WHEN d.taxable THEN {_half_up_tax("d.gross", "d.inclusive", "d.rate")}
                 ELSE 0 END AS tax1,
            CASE WHEN d.taxable THEN -{_half_up_tax("d.discount", "d.inclusive", "d.rate")}
                 ELSE 0 END AS tax2
        FROM bench_due d"""
    invoices = """CREATE TEMP TABLE bench_inv AS
        SELECT client_id, currency, split, MIN(start) AS period_start,
            SUM(gross - CASE WHEN inclusive THEN tax1 ELSE 0 END
                - discount - CASE WHEN inclusive THEN tax2 ELSE 0 END) AS subtotal,
            SUM(tax1 + tax2) AS tax,
            ROW_NUMBER() OVER (ORDER BY client_id, currency, split) AS number_value
        FROM bench_lines GROUP BY client_id, currency, split"""
    join = (
        "JOIN bench_map m ON m.client_id = l.client_id AND m.currency = l.currency "
        "AND m.split = l.split"
    )
    end = sql.day_before("l.following")
    period = f"' (' || {sql.ddmmyyyy('l.start')} || ' – ' || {sql.ddmmyyyy(end)} || ')'"
    line = {
        "invoice_id": "m.invoice_id",
        "service_id": "l.service_id",
        "period_start": "l.start",
        "period_end": end,
        "taxable": "l.taxable",
        "tax_inclusive": "l.inclusive",
        "tax_rate": "l.line_rate / 1000.0",
        "quantity": "1",
    }
    invoice_rows = f"FROM bench_map m JOIN {_table(Invoice)} v ON v.id = m.invoice_id " \
                   f"JOIN {_table(Client)} c ON c.id = m.client_id"  # fmt: skip
    return [
        (due, [bill_until]),
        (lines, []),
        (invoices, []),
        ("CREATE INDEX bench_inv_number ON bench_inv (number_value)", []),
        _insert_select(
            Invoice,
            {
                "client_id": "i.client_id",
                "number": "'BL' || CAST(i.number_value AS text)",
                "number_value": "i.number_value",
                "status": "'unpaid'",
                "currency": "i.currency",
                "issued_on": "%s",
                "due_on": "CASE WHEN i.period_start > %s THEN i.period_start ELSE %s END",
                "period_start": "i.period_start",
                "snapshot": sql.jsonb(
                    sql.obj(
                        "'name'",
                        "c.name",
                        "'number'",
                        "c.number",
                        "'email'",
                        "c.email",
                        "'language'",
                        "c.language",
                    )
                ),
                "subtotal_minor": "i.subtotal",
                "tax_minor": "i.tax",
                "total_minor": "i.subtotal + i.tax",
                "balance_minor": "i.subtotal + i.tax",
                "created_at": "%s",
            },
            f"FROM bench_inv i JOIN {_table(Client)} c ON c.id = i.client_id",
            [day, day, day, now],
        ),
        (
            f"""CREATE TEMP TABLE bench_map AS
            SELECT i.client_id, i.currency, i.split, v.id AS invoice_id
            FROM bench_inv i JOIN {_table(Invoice)} v ON v.number_value = i.number_value""",
            [],
        ),
        ("CREATE INDEX bench_map_key ON bench_map (client_id, currency, split)", []),
        _insert_select(
            InvoiceLine,
            {
                **line,
                "position": "0",
                "description": f"l.product_name || {period}",
                "unit_price": "l.gross / 100.0",
                "net_minor": "l.gross - CASE WHEN l.inclusive THEN l.tax1 ELSE 0 END",
                "tax_minor": "l.tax1",
            },
            f"FROM bench_lines l {join}",
        ),
        _insert_select(
            InvoiceLine,
            {
                **line,
                "position": "1",
                "description": "'Promo code ' || l.promo_code",
                "unit_price": "-l.discount / 100.0",
                "net_minor": "-l.discount - CASE WHEN l.inclusive THEN l.tax2 ELSE 0 END",
                "tax_minor": "l.tax2",
            },
            f"FROM bench_lines l {join} WHERE l.discount > 0",
        ),
        _insert_select(
            BilledPeriod,
            {
                "service_id": "l.service_id",
                "period_start": "l.start",
                "period_end": end,
                "invoice_id": "m.invoice_id",
            },
            f"FROM bench_lines l {join}",
        ),
        (
            f"""UPDATE {_table(Service)} SET period_start = l.start, next_due_on = l.following
            FROM bench_lines l WHERE {_table(Service)}.id = l.service_id""",
            [],
        ),
        _insert_select(
            AuditEntry,
            {
                "action": "'update'",
                "object_type_id": str(service_type),
                "object_id": "CAST(l.service_id AS text)",
                "object_repr": "l.product_name || ' #' || CAST(l.service_id AS text)",
                "owner_id": "l.owner_id",
                "org_unit_id": "l.org_unit_id",
                "changes": sql.jsonb(
                    sql.obj(
                        "'next_due_on'",
                        sql.obj(
                            "'before'",
                            "CAST(l.start AS text)",
                            "'after'",
                            "CAST(l.following AS text)",
                        ),
                    )
                ),
                "at": "%s",
            },
            "FROM bench_lines l",
            [now],
        ),
        _insert_select(
            Event,
            {
                "client_id": "m.client_id",
                "owner_id": "c.owner_id",
                "org_unit_id": "c.org_unit_id",
                "category": "'ar'",
                "type": "'invoice.issued'",
                "amount_minor": "v.total_minor",
                "currency": "v.currency",
                "reference": "v.number",
                "subject_type_id": str(invoice_type),
                "subject_id": "CAST(v.id AS text)",
                "occurred_at": "%s",
            },
            invoice_rows,
            [now],
        ),
        _insert_select(
            LedgerEntry,
            {
                "seq": "1000000000000 + v.number_value",
                "client_id": "v.client_id",
                "account": "'receivable'",
                "kind": "'invoice'",
                "invoice_id": "v.id",
                "amount_minor": "v.total_minor",
                "currency": "v.currency",
                "reference": "v.number",
                "posted_at": "%s",
                "prev_hash": "''",
                "hash": "''",
                "owner_id": "c.owner_id",
                "org_unit_id": "c.org_unit_id",
            },
            invoice_rows,
            [now],
        ),
    ]


def baseline(run_day: dt.date, bill_until: dt.date) -> tuple[float, int, dict]:
    """Seconds the same billing takes in set-based SQL, its invoices and totals; rolled back."""
    ops = connection.ops
    statements = _baseline_statements(
        ops.adapt_datefield_value(bill_until),
        ops.adapt_datefield_value(run_day),
        ops.adapt_datetimefield_value(clock.now()),
    )
    with connection.cursor() as cursor:
        for name in TEMP_TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for text, params in statements:
            cursor.execute(text, params)
        seconds = time.perf_counter() - started
        cursor.execute("SELECT currency, SUM(subtotal + tax) FROM bench_inv GROUP BY currency")
        totals = {currency: int(total) for currency, total in cursor.fetchall()}
        cursor.execute("SELECT COUNT(*) FROM bench_inv")
        (invoices,) = cursor.fetchone()
        transaction.set_rollback(True)
    with connection.cursor() as cursor:
        for name in TEMP_TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
    return seconds, invoices, totals


# ----------------------------------------------------------------------------- checks


def _one(sql: str, params: list | None = None) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()


def checks(run: BillingRun, expected: Expected, baseline_totals: dict) -> dict:
    """Exact counts of what the run wrote, and whether each is what it must be."""
    invoices = Invoice.objects.filter(billing_run=run).count()
    count, distinct, low, high = _one(
        f"SELECT COUNT(*), COUNT(DISTINCT number_value), MIN(number_value), MAX(number_value) "
        f"FROM {_table(Invoice)} WHERE billing_run_id = %s",
        [run.pk],
    )
    periods, period_services = _one(
        f"SELECT COUNT(*), COUNT(DISTINCT service_id) FROM {_table(BilledPeriod)}"
    )
    (advanced,) = _one(
        f"SELECT COUNT(*) FROM {_table(BilledPeriod)} bp JOIN {_table(Service)} s "
        f"ON s.id = bp.service_id WHERE bp.period_start = s.period_start "
        f"AND bp.period_end < s.next_due_on AND s.next_due_on > %s",
        [connection.ops.adapt_datefield_value(run.bill_until)],
    )
    lines = InvoiceLine.objects.count()
    ledger = LedgerEntry.objects.count()
    issued_events = Event.objects.filter(type="invoice.issued").count()
    credit_events = Event.objects.filter(type="credit.applied").count()
    audits = AuditEntry.objects.filter(
        object_type=ContentType.objects.get_for_model(Service), action="update"
    ).count()
    totals = {
        row["currency"]: row["total"]
        for row in Invoice.objects.filter(billing_run=run)
        .values("currency")
        .annotate(total=models.Sum("total_minor"))
    }
    started = time.perf_counter()
    verified = ledger_verify()
    verify_seconds = time.perf_counter() - started
    found = {
        "run_status": run.status,
        "run_invoices": run.invoices,
        "run_held": run.held,
        "run_errors": run.errors,
        "invoices": invoices,
        "invoices_expected": expected.invoices,
        "lines": lines,
        "lines_expected": expected.lines,
        "billed_periods": periods,
        "services_with_one_period": period_services,
        "services_advanced_one_period": advanced,
        "numbers_gapless": (count == distinct == invoices and low == 1 and high == invoices),
        "events_issued": issued_events,
        "events_credit_applied": credit_events,
        "credit_applied_expected": expected.credit_applied,
        "audit_entries": audits,
        "ledger_entries": ledger,
        "ledger_entries_expected": expected.ledger_before + invoices + 2 * credit_events,
        "ledger_verified": verified.ok,
        "verify_seconds": round(verify_seconds, 1),
        # None when the baseline was skipped: there is nothing to compare with.
        "totals_match_baseline": totals == baseline_totals if baseline_totals else None,
    }
    found["all_checks_ok"] = (
        run.status == BillingRun.Status.DONE
        and run.invoices == invoices == expected.invoices
        and run.held == run.errors == 0
        and lines == expected.lines
        and periods == period_services == advanced == expected.services
        and found["numbers_gapless"]
        and issued_events == invoices
        and credit_events == expected.credit_applied
        and audits == expected.services
        and ledger == found["ledger_entries_expected"]
        and verified.ok
        and found["totals_match_baseline"] is not False
    )
    return found


# ----------------------------------------------------------------------------- run


def run(argv: list[str]) -> dict:
    """Fill the base, time the baseline, then the billing run; check and return the figures."""
    parser = argparse.ArgumentParser(prog="clientbase bench billing_run")
    parser.add_argument("--clients", type=_positive, default=DEFAULT_CLIENTS)
    parser.add_argument("--services", type=_positive, default=DEFAULT_SERVICES)
    parser.add_argument("--workers", type=_positive, default=2)
    parser.add_argument("--chunk", type=_positive, default=settings.BILLING_RUN_CHUNK,
                        help="clients per chunk (BILLING_RUN_CHUNK)")  # fmt: skip
    parser.add_argument("--day", type=dt.date.fromisoformat, default=DEFAULT_DAY)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument(
        "--credit-clients",
        type=int,
        default=None,
        help="clients holding credit (default 1 in 1000)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the SQL baseline")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="-",
        metavar="FILE",
        help="one worker under cProfile; the profile to stderr, or its raw stats to FILE",
    )
    options = parser.parse_args(argv)
    if Client.everything.exists() or Invoice.objects.exists():
        raise CommandError("the benchmark needs an empty database; this one holds clients")
    settings.BILLING_RUN_CHUNK = options.chunk
    workers = 1 if options.profile else options.workers
    figures: dict = {
        "clients": options.clients,
        "services": options.services,
        "workers": workers,
        "chunk": options.chunk,
        "database": connection.vendor,
    }
    started = time.perf_counter()
    credit = options.credit_clients
    credit = max(1, options.clients // 1000) if credit is None else credit
    expected = generate(options.clients, options.services, options.day, options.seed, credit)
    figures["fill_seconds"] = round(time.perf_counter() - started, 1)
    figures["separate_invoice_clients"] = expected.separate_clients
    figures["promo_services"] = expected.promo_services
    figures["credit_clients"] = expected.credit_clients

    bill_until = options.day + dt.timedelta(days=days_in_advance())
    baseline_totals: dict = {}
    baseline_seconds = None
    if not options.no_baseline:
        baseline_seconds, baseline_invoices, baseline_totals = baseline(options.day, bill_until)
        if baseline_invoices != expected.invoices:
            raise CommandError(
                f"the baseline made {baseline_invoices} invoices, not {expected.invoices}"
            )
        _analyze()  # the rolled-back rows leave dead tuples on PostgreSQL

    autovacuum = _autovacuum_on()
    if connection.vendor == "postgresql":
        figures["autovacuum"] = autovacuum
    profiler = cProfile.Profile() if options.profile else None
    with contextlib.nullcontext() if autovacuum else _Autoanalyze() as analyzing:
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        billing_run = billing_run_now(day=options.day, helpers=workers - 1)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
    if analyzing is not None:
        figures["analyzed_by_bench"] = analyzing.runs
    if profiler and options.profile != "-":
        profiler.dump_stats(options.profile)
    elif profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(70)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(40)

    invoices = billing_run.invoices + billing_run.held
    rate = invoices / seconds
    figures |= {
        "invoices": invoices,
        "seconds": round(seconds, 1),
        "invoices_per_s": round(rate, 1),
        "services_per_s": round(expected.services / seconds, 1),
    }
    if baseline_seconds is not None:
        baseline_rate = expected.invoices / baseline_seconds
        figures |= {
            "baseline_seconds": round(baseline_seconds, 1),
            "baseline_invoices_per_s": round(baseline_rate, 1),
            "ratio": round(rate / baseline_rate, 3),
        }
    figures |= checks(billing_run, expected, baseline_totals)
    figures["target_invoices_per_s"] = TARGET_INVOICES_PER_S
    figures["within_target"] = rate >= TARGET_INVOICES_PER_S
    figures["load_average"] = round(os.getloadavg()[0], 1)
    return figures
