"""Invoice documents (BIL-6): the client snapshot, one invoice as PDF, many as a zip.

The PDF is made by typst from templates/billing/invoice.typ. Everything the template shows
is formatted and translated here and handed over as JSON in `sys.inputs`, so no client text
is ever read as typst markup. The template uses the fonts built into typst (New Computer
Modern covers Latin with Vietnamese, Cyrillic and the currency signs) and ignores the
machine's fonts, so a PDF looks the same everywhere and needs nothing installed.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
import zipfile
from collections.abc import Iterable
from decimal import Decimal
from io import BytesIO
from typing import IO

from babel.dates import format_date, format_interval
from babel.numbers import format_currency, format_decimal, format_percent
from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import override, pgettext
from django_countries import countries

from clientbase.billing.models import Invoice
from clientbase.billing.typst_render import render, render_job, warm_up
from clientbase.core.money import Money

# Statuses printed across the page, so nobody takes the document for a valid bill.
WATERMARKED = {Invoice.Status.DRAFT, Invoice.Status.CANCELLED}


def _language(code: str | None) -> str:
    """A language the product speaks (the invoice's, else English)."""
    known = {code for code, _name in settings.LANGUAGES}
    return code if code in known else "en"


def _lines_of(text: str) -> list[str]:
    return [line.strip() for line in str(text or "").splitlines() if line.strip()]


def company_snapshot() -> dict:
    """The seller as settings describe it now: COMPANY_NAME, _ADDRESS, _TAX_ID, _BANK.

    COMPANY_ADDRESS and COMPANY_BANK may be a list of lines or one text with line breaks.
    """
    address = getattr(settings, "COMPANY_ADDRESS", [])
    bank = getattr(settings, "COMPANY_BANK", "")
    return {
        "name": str(getattr(settings, "COMPANY_NAME", "Clientbase demo company")),
        "address": _lines_of(address) if isinstance(address, str) else [str(a) for a in address],
        "tax_id": str(getattr(settings, "COMPANY_TAX_ID", "")),
        "bank": "\n".join(bank) if isinstance(bank, list | tuple) else str(bank),
    }


def _address_lines(line1: str, line2: str, postcode: str, city: str, region: str, country: str):
    place = " ".join(p for p in (postcode.strip(), city.strip()) if p)
    lines = [line1.strip(), line2.strip(), place, region.strip()]
    if country:
        lines.append(str(countries.name(country)) or country)
    return [line for line in lines if line]


def _billing_address(client) -> list[str]:
    """The billing address, else the correspondence one, else the client's own fields."""
    addresses = list(client.addresses.all())  # prefetched in batches
    for kind in ("billing", "correspondence"):
        for address in addresses:
            if address.type == kind:
                return _address_lines(
                    address.line1,
                    address.line2,
                    address.postcode,
                    address.city,
                    address.region,
                    address.country,
                )
    return _address_lines(client.street, "", client.postcode, client.city, "", client.country)


def client_snapshot(client) -> dict:
    """The client and the seller as an invoice shows them, frozen at issue.

    Country names are written in the client's language, as the document will be.
    """
    language = _language(client.language)
    with override(language):
        address = _billing_address(client)
    return {
        "name": client.name,
        "number": client.number,
        "email": client.email,
        "tax_id": client.tax_id,
        "kpp": client.kpp,
        "language": language,
        "address": address,
        "company": company_snapshot(),
    }


# --- formatting ---------------------------------------------------------------------------


def _date(day: dt.date | None, locale: str) -> str:
    return format_date(day, "medium", locale=locale) if day else ""


def _period(start: dt.date | None, end: dt.date | None, locale: str) -> str:
    if start and end:
        return format_interval(start, end, "yMMMd", locale=locale)
    return _date(start or end, locale)


def _price(amount: Decimal, currency: str, locale: str) -> str:
    """A unit price with as many decimals as it has (at least the currency's)."""
    return format_currency(amount, currency, locale=locale, decimal_quantization=False)


def _percent(value: Decimal, locale: str) -> str:
    return format_percent(value / 100, locale=locale, decimal_quantization=False)


def _line_row(number: int, line, currency: str, locale: str) -> dict:
    tax = ""
    if line.taxable and line.tax_rate:
        tax = _percent(line.tax_rate, locale)
        if line.tax_inclusive:
            tax = _("%(rate)s incl.") % {"rate": tax}
    return {
        "position": str(number),
        "description": line.description,
        "period": _period(line.period_start, line.period_end, locale),
        "quantity": format_decimal(line.quantity, locale=locale),
        "unit_price": _price(line.unit_price, currency, locale),
        "discount": _percent(line.discount_percent, locale) if line.discount_percent else "",
        "tax": tax,
        "amount": Money(line.net_minor, currency).format(locale),
    }


def _totals(invoice: Invoice, locale: str) -> list[dict]:
    def row(label, minor, strong=False):
        return {
            "label": label,
            "value": Money(minor, invoice.currency).format(locale),
            "strong": strong,
        }

    rows = [row(_("Subtotal"), invoice.subtotal_minor)]
    if invoice.tax_minor:
        rows.append(row(_("Tax"), invoice.tax_minor))
    rows.append(row(_("Total"), invoice.total_minor, strong=True))
    if invoice.is_draft:
        return rows
    if invoice.paid_minor:
        rows.append(row(_("Paid"), -invoice.paid_minor))
    if invoice.credited_minor:
        notes = list(invoice.credit_notes.all())
        for note in sorted(notes, key=lambda n: n.pk):
            label = _("Write-off %(number)s") if note.kind == "write_off" else None
            label = label or _("Credit note %(number)s")
            rows.append(row(label % {"number": note.number}, -note.amount_minor))
        rest = invoice.credited_minor - sum(n.amount_minor for n in notes)
        if rest or not notes:
            rows.append(row(_("Credited"), -rest if notes else -invoice.credited_minor))
    if invoice.refunded_minor:
        rows.append(row(_("Refunded"), invoice.refunded_minor))
    rows.append(row(_("Balance due"), invoice.balance_minor, strong=True))
    return rows


def invoice_document(invoice: Invoice) -> dict:
    """What the invoice shows, formatted and translated in its language (the template's data).

    Issued invoices show their snapshot; drafts show the client as it is now.
    """
    snapshot = invoice.snapshot if (invoice.snapshot and not invoice.is_draft) else None
    snapshot = snapshot or client_snapshot(invoice.client)
    language = _language(snapshot.get("language"))
    company = snapshot.get("company") or company_snapshot()
    locale = language
    with override(language):
        client_lines = list(snapshot.get("address") or [])
        tax_ids = []
        if snapshot.get("tax_id"):
            tax_ids.append(_("Tax id: %(tax_id)s") % {"tax_id": snapshot["tax_id"]})
        if snapshot.get("kpp"):
            tax_ids.append(_("KPP: %(kpp)s") % {"kpp": snapshot["kpp"]})
        client_lines += [" · ".join(tax_ids), snapshot.get("email", "")]

        seller_lines = list(company.get("address") or [])
        if company.get("tax_id"):
            seller_lines.append(_("Tax id: %(tax_id)s") % {"tax_id": company["tax_id"]})
        bank = _lines_of(company.get("bank", ""))
        footer = [_("Bank details: %(bank)s") % {"bank": " · ".join(bank)}] if bank else []

        meta = []
        if invoice.is_draft:
            title = _("Draft invoice")
        else:
            title = _("Invoice")
            meta.append((pgettext("invoice", "Number"), invoice.number))
        meta += [
            (_("Date"), _date(invoice.issued_on, locale)),
            (_("Due date"), _date(invoice.due_on, locale)),
        ]
        if snapshot.get("number"):
            meta.append((_("Client number"), snapshot["number"]))
        if not invoice.is_draft:
            meta.append((_("Status"), str(invoice.get_status_display())))
        if invoice.paid_on and invoice.status == Invoice.Status.PAID:
            meta.append((_("Paid on"), _date(invoice.paid_on, locale)))

        watermark = ""
        if invoice.status in WATERMARKED:
            watermark = _("Draft") if invoice.is_draft else str(invoice.get_status_display())

        return {
            "language": language,
            "title": title,
            "number": invoice.number,
            "watermark": watermark,
            "meta": [[label, value] for label, value in meta],
            "company": {"name": company.get("name", ""), "lines": seller_lines, "footer": footer},
            "client": {"name": snapshot.get("name", ""), "lines": client_lines},
            "labels": {"bill_to": _("Bill to"), "notes": _("Notes")},
            "columns": [
                "#",
                _("Description"),
                _("Qty"),
                _("Unit price"),
                _("Discount"),
                _("Tax"),
                _("Amount"),
            ],
            "lines": [
                _line_row(n, line, invoice.currency, locale)
                for n, line in enumerate(invoice.lines.all(), start=1)
            ],
            "totals": _totals(invoice, locale),
            "notes": _lines_of(invoice.notes),
        }


def invoice_pdf(invoice: Invoice) -> bytes:
    """One invoice as PDF, in the language and currency it was issued in.

    The PDF's date is the invoice's creation, so the same invoice gives the same bytes.
    """
    return render(invoice_document(invoice), timestamp=_timestamp(invoice))


def _timestamp(invoice: Invoice) -> int | None:
    return int(invoice.created_at.timestamp()) if invoice.created_at else None


# --- many invoices -------------------------------------------------------------------------

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')


def invoice_filename(invoice: Invoice) -> str:
    """`<number>.pdf`, or `draft-<id>.pdf` for a draft, safe as a file name."""
    stem = invoice.number if invoice.number else f"draft-{invoice.pk}"
    return _UNSAFE.sub("_", stem).strip(". ") + ".pdf"


# Below this many invoices a batch renders in this process; above, in one worker per core.
PARALLEL_FROM = 16


def write_invoices_zip(
    invoices: Iterable[Invoice], target: IO[bytes], *, workers: int | None = None
) -> list[str]:
    """Write a zip of the invoices' PDFs to a binary file (it need not be seekable).

    A QuerySet is read in chunks with its clients, lines and addresses. The names
    written are returned in order; a name met twice gets `-2`, `-3`… before `.pdf`.
    """
    if isinstance(invoices, QuerySet):
        invoices = invoices.select_related("client").prefetch_related(
            "lines", "credit_notes", "client__addresses"
        )
        invoices = invoices.iterator(chunk_size=200)
    invoices = list(invoices)
    if workers is None:
        workers = (os.cpu_count() or 1) if len(invoices) >= PARALLEL_FROM else 1
    names: list[str] = []
    seen: set[str] = set()
    for invoice in invoices:
        name = invoice_filename(invoice)
        n = 1
        while name in seen:
            n += 1
            name = f"{invoice_filename(invoice)[:-4]}-{n}.pdf"
        seen.add(name)
        names.append(name)
    # typst holds the GIL, so cores are used by processes. They are spawned (typst's own
    # threads do not survive a fork) before the documents are made, so they start and load
    # the template while this process reads and translates; they only compile.
    pool = (
        multiprocessing.get_context("spawn").Pool(workers, initializer=warm_up)
        if workers > 1
        else None
    )
    try:
        # Made here, in this thread: the pool reads its jobs from a thread of its own, which
        # would open another database connection.
        jobs = [(invoice_document(invoice), _timestamp(invoice)) for invoice in invoices]
        rendered = pool.imap(render_job, jobs, chunksize=4) if pool else map(render_job, jobs)
        # The PDFs are compressed already; storing them is faster than deflating them again.
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, pdf in zip(names, rendered, strict=True):
                archive.writestr(name, pdf)
    finally:
        if pool is not None:
            pool.terminate()
    return names


def invoices_zip(invoices: Iterable[Invoice]) -> bytes:
    """A zip of the invoices' PDFs, named by invoice number (draft-<id> for drafts)."""
    buffer = BytesIO()
    write_invoices_zip(invoices, buffer)
    return buffer.getvalue()
