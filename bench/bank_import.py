"""Benchmark: a bank statement of --lines payments read, matched to invoices, and imported.

1. --lines clients, each with a tax id and one issued invoice (bulk inserts).
2. A 1C client-bank exchange file with one payment order per invoice: nine in ten name
   their invoice in the purpose ("Оплата по счету 88#N") with the payer's INN and the exact
   amount; the tenth pays a different amount, so it must wait in suspense.
3. Timed: parsing alone; parsing and matching every line (the decision, no writes); then the
   whole import, which also posts each exact match as a payment through the ledger.
4. Baseline: the same lookup done by one raw SQL query joining invoice numbers to the
   clients' tax ids; `match_ratio` is the matching rate over the baseline's.
"""

import argparse
import datetime as dt
import time

from django.db import connection, transaction

from clientbase.billing.bank import _invoices_named, match_line, statement_import
from clientbase.billing.models import BankPayment, Invoice
from clientbase.billing.statements import parse_statement
from clientbase.clients.models import Client
from clientbase.core.demo import ensure_demo_org

DEFAULT_LINES = 20_000
OUR_ACCOUNT = "40702810502080001823"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seed(count: int) -> list[Invoice]:
    unit = next(iter(ensure_demo_org().units.values()))
    clients = Client.objects.bulk_create(
        (
            Client(number=f"B{i:07d}", name=f"ООО Плательщик {i}", email=f"p{i}@bank.example",
                   currency="RUB", tax_id=f"{7700000000 + i}", org_unit=unit)
            for i in range(count)
        ),
        batch_size=2000,
    )  # fmt: skip
    today = dt.date(2026, 2, 1)
    return Invoice.objects.bulk_create(
        (
            Invoice(client=c, currency="RUB", number=str(70000 + i), number_value=70000 + i,
                    status="unpaid", issued_on=today, due_on=today, subtotal_minor=100000 + i,
                    total_minor=100000 + i, balance_minor=100000 + i)
            for i, c in enumerate(clients)
        ),
        batch_size=2000,
    )  # fmt: skip


def _statement(invoices: list[Invoice]) -> bytes:
    lines = ["1CClientBankExchange", "ВерсияФормата=1.03", "Кодировка=Windows",
             f"РасчСчет={OUR_ACCOUNT}", "СекцияРасчСчет", f"РасчСчет={OUR_ACCOUNT}",
             "КонецРасчСчет"]  # fmt: skip
    for i, invoice in enumerate(invoices):
        amount = invoice.balance_minor + (0 if i % 10 else 5000)
        lines += [
            "СекцияДокумент=Платежное поручение",
            f"Номер={i + 1}",
            "Дата=25.02.2026",
            f"Сумма={amount // 100}.{amount % 100:02d}",
            f"ПлательщикСчет=4070281020047{i:07d}",
            f"ПлательщикИНН={invoice.client.tax_id}",
            f"Плательщик1={invoice.client.name}",
            f"ПолучательСчет={OUR_ACCOUNT}",
            "ДатаПоступило=26.02.2026",
            f"НазначениеПлатежа=Оплата по счету 88#{invoice.number} от 09.02.26; Без НДС",
            "КонецДокумента",
        ]
    lines.append("КонецФайла")
    return "\r\n".join(lines).encode("cp1251")


def _baseline_seconds(numbers: list[str]) -> float:
    quote = connection.ops.quote_name
    sql = (
        f"SELECT i.{quote('number')}, i.{quote('balance_minor')}, c.{quote('tax_id')} "
        f"FROM {quote(Invoice._meta.db_table)} i JOIN {quote(Client._meta.db_table)} c "
        f"ON c.{quote('id')} = i.{quote('client_id')} WHERE i.{quote('number')} IN "
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for start in range(0, len(numbers), 500):
            part = numbers[start : start + 500]
            cursor.execute(sql + f"({', '.join(['%s'] * len(part))})", part)
            cursor.fetchall()
    return time.perf_counter() - started


def run(argv: list[str]) -> dict:
    """Seed, then time parsing, matching and the whole import; return the figures."""
    parser = argparse.ArgumentParser(prog="clientbase bench bank_import")
    parser.add_argument("--lines", type=_positive, default=DEFAULT_LINES)
    options = parser.parse_args(argv)
    invoices = _seed(options.lines)
    invoices = list(Invoice.objects.select_related("client").order_by("pk"))
    data = _statement(invoices)

    started = time.perf_counter()
    statement = parse_statement(data)
    parse_seconds = time.perf_counter() - started

    started = time.perf_counter()
    statement = parse_statement(data)
    with transaction.atomic():
        named = _invoices_named(statement.lines)
        matched = sum(1 for line in statement.lines if match_line(line, named).invoice)
    match_seconds = time.perf_counter() - started

    baseline = _baseline_seconds([inv.number for inv in invoices])

    started = time.perf_counter()
    imported = statement_import(by=None, data=data, filename="bench.txt")
    import_seconds = time.perf_counter() - started
    count = len(statement.lines)
    exact = count - len(range(0, count, 10))
    assert matched == imported.posted == exact, (matched, imported.posted, exact)
    assert BankPayment.objects.filter(state="suspense").count() == count - exact
    match_rate = count / match_seconds
    baseline_rate = count / baseline
    return {
        "lines": count,
        "posted": imported.posted,
        "suspense": imported.suspense,
        "parse_lines_per_s": round(count / parse_seconds),
        "match_lines_per_s": round(match_rate),
        "baseline_lookup_lines_per_s": round(baseline_rate),
        "match_ratio": round(match_rate / baseline_rate, 3),
        "import_lines_per_s": round(count / import_seconds),
        "database": connection.vendor,
    }
