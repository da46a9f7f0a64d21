"""Benchmark: invoice PDFs (BIL-6), one at a time and as a zip, beside a bare typst compile.

1. --invoices draft invoices of --lines lines each, in four languages and currencies.
2. One PDF each (invoice_pdf: reading the lines, formatting, compiling): median and p95 ms.
3. All of them again as one zip (write_invoices_zip on a QuerySet, as the export does):
   invoices a second.
4. Baseline: typst compiling a fixed one-page document of a few lines, per compile, in the
   same run; the ratios compare the invoice with it. Its number changes each time, as
   typst would otherwise answer a repeated compile from its cache.
"""

import argparse
import datetime as dt
import io
import os
import statistics
import time
from decimal import Decimal

import typst
from django.core.management.base import CommandError

from clientbase.billing import pdf
from clientbase.billing.models import Invoice, InvoiceLine
from clientbase.clients.models import Client
from clientbase.core.demo import ensure_demo_org

BASELINE = b"""#set page(paper: "a4")
#set text(font: "New Computer Modern", size: 10pt)
= Invoice #sys.inputs.n
Acme Ltd, 1 High St, London

#table(columns: 3, [Hosting], [2], [25.00], [Setup], [1], [10.00])
"""
MARKETS = [
    ("en", "EUR", "GB", "Acme Ltd", "Hosting, monthly"),
    ("ru", "RUB", "RU", "ООО «Ромашка»", "Доступ на пользователя «Стандарт»"),
    ("fr", "EUR", "FR", "Société Générale d’Œuvres", "Hébergement mensuel"),
    ("vi", "VND", "VN", "Công ty TNHH Nguyễn Văn Ánh", "Dịch vụ lưu trữ"),
]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def make_invoices(count: int, lines: int) -> list[int]:
    """Draft invoices with their clients and lines, straight into the tables; their ids."""
    org = ensure_demo_org()
    owner = org.users["admin"]
    ids = []
    for i in range(count):
        language, currency, country, name, description = MARKETS[i % len(MARKETS)]
        client = Client.objects.create(
            owner=owner,
            org_unit=owner.org_unit,
            number=f"B-{i:05d}",
            name=f"{name} {i}",
            email=f"bench{i}@example.com",
            currency=currency,
            language=language,
            country=country,
            street=f"{i} Main Street",
            postcode="10000",
            city="City",
        )
        invoice = Invoice.objects.create(
            client=client,
            currency=currency,
            issued_on=dt.date(2025, 3, 1),
            due_on=dt.date(2025, 3, 15),
            notes="Thank you for your business.",
        )
        net = 0
        for n in range(lines):
            amount = 1000 * (n + 1)
            InvoiceLine.objects.create(
                invoice=invoice,
                position=n,
                description=f"{description} #{n + 1}",
                period_start=dt.date(2025, 3, 1),
                period_end=dt.date(2025, 3, 31),
                quantity=Decimal(n + 1),
                unit_price=Decimal(10),
                discount_percent=Decimal(5) if n % 2 else Decimal(0),
                tax_rate=Decimal(20),
                net_minor=amount,
                tax_minor=amount // 5,
            )
            net += amount
        Invoice.objects.filter(pk=invoice.pk).update(
            subtotal_minor=net, tax_minor=net // 5, total_minor=net + net // 5
        )
        ids.append(invoice.pk)
    return ids


def _ms(samples: list[float]) -> tuple[float, float]:
    """Median and 95th percentile of samples in seconds, as milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return round(statistics.median(ordered) * 1000, 2), round(p95 * 1000, 2)


def run(argv: list[str]) -> dict:
    """Render --invoices invoices one by one and as a zip; return the figures."""
    parser = argparse.ArgumentParser(prog="clientbase bench billing_pdf")
    parser.add_argument("--invoices", type=_positive, default=200)
    parser.add_argument("--lines", type=_positive, default=5)
    options = parser.parse_args(argv)
    if Invoice.objects.exists():
        raise CommandError("the benchmark needs an empty database; this one holds invoices")
    ids = make_invoices(options.invoices, options.lines)
    figures: dict = {"invoices": options.invoices, "lines": options.lines}

    # Warm up: the first compile in a thread loads the template and the fonts.
    started = time.perf_counter()
    pdf.invoice_pdf(Invoice.objects.get(pk=ids[0]))
    figures["first_pdf_ms"] = round((time.perf_counter() - started) * 1000, 1)
    compiler = typst.Compiler(ignore_system_fonts=True)
    compiler.compile(BASELINE, format="pdf", sys_inputs={"n": "0"})

    samples, size = [], 0
    for pk in ids:
        started = time.perf_counter()
        invoice = Invoice.objects.select_related("client").get(pk=pk)
        size += len(pdf.invoice_pdf(invoice))
        samples.append(time.perf_counter() - started)
    figures["pdf_median_ms"], figures["pdf_p95_ms"] = _ms(samples)
    figures["pdf_kb"] = round(size / len(ids) / 1024, 1)

    baseline = []
    for _ in ids:
        started = time.perf_counter()
        compiler.compile(BASELINE, format="pdf", sys_inputs={"n": "0"})
        baseline.append(time.perf_counter() - started)
    figures["baseline_median_ms"], figures["baseline_p95_ms"] = _ms(baseline)

    target = io.BytesIO()
    started = time.perf_counter()
    names = pdf.write_invoices_zip(Invoice.objects.filter(pk__in=ids).order_by("id"), target)
    seconds = time.perf_counter() - started
    if len(names) != len(ids):
        raise CommandError(f"the zip holds {len(names)} PDFs, not {len(ids)}")
    figures["zip_invoices_per_second"] = round(len(ids) / seconds, 1)
    figures["zip_mb"] = round(target.tell() / 1024 / 1024, 2)
    figures["baseline_per_second"] = round(1 / statistics.mean(baseline), 1)

    figures["ratio"] = round(figures["baseline_median_ms"] / figures["pdf_median_ms"], 3)
    figures["zip_ratio"] = round(
        figures["zip_invoices_per_second"] / figures["baseline_per_second"], 3
    )
    figures["targets_met"] = figures["pdf_median_ms"] <= 50 and (
        figures["zip_invoices_per_second"] >= 100
    )
    figures["load_average"] = round(os.getloadavg()[0], 1)
    return figures
