"""Quote and contract documents: PDF through billing's typst template, and their mail.

Both documents reuse the invoice's template and formatting (seller, client block, lines,
totals, notes): a quote is priced like an invoice, and a contract prints the text of its
template, filled in with merge tags, where an invoice prints its notes.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.translation import gettext as _
from django.utils.translation import override, pgettext

from clientbase.billing.pdf import (
    _date,
    _language,
    _line_row,
    _lines_of,
    client_snapshot,
    company_snapshot,
)
from clientbase.billing.typst_render import render
from clientbase.core.money import Money
from clientbase.sales.models import Contract, Quote


class _Row:
    """A quote or contract line as billing's row formatter reads an invoice line."""

    def __init__(self, line):
        self.__dict__.update(
            {f.attname: getattr(line, f.attname) for f in line._meta.concrete_fields}
        )
        self.tax_inclusive = False
        self.period_start = self.period_end = None


def _lead_party(lead) -> dict:
    lines = [lead.company, lead.street, " ".join(p for p in (lead.postcode, lead.city) if p)]
    return {
        "name": lead.name,
        "language": _language(lead.language),
        "address": [line for line in lines if line],
        "email": lead.email,
        "tax_id": lead.tax_id,
        "number": lead.number,
        "company": company_snapshot(),
    }


def _document(*, party: dict, title: str, meta, lines, currency: str, totals, notes) -> dict:
    language = party["language"]
    company = party.get("company") or company_snapshot()
    seller_lines = list(company.get("address") or [])
    if company.get("tax_id"):
        seller_lines.append(_("Tax id: %(tax_id)s") % {"tax_id": company["tax_id"]})
    client_lines = list(party.get("address") or [])
    if party.get("tax_id"):
        client_lines.append(_("Tax id: %(tax_id)s") % {"tax_id": party["tax_id"]})
    client_lines.append(party.get("email") or "")
    return {
        "language": language,
        "title": title,
        "number": meta[0][1],
        "watermark": "",
        "meta": [[str(label), value] for label, value in meta],
        "company": {"name": company.get("name", ""), "lines": seller_lines, "footer": []},
        "client": {"name": party.get("name", ""), "lines": client_lines},
        "labels": {"bill_to": _("Prepared for"), "notes": _("Terms")},
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
            _line_row(n, _Row(line), currency, language) for n, line in enumerate(lines, start=1)
        ],
        "totals": [
            {"label": str(label), "value": Money(minor, currency).format(language), "strong": s}
            for label, minor, s in totals
        ],
        "notes": notes,
    }


def quote_document(quote: Quote) -> dict:
    """What the quote shows, in the client's (or lead's) language."""
    party = client_snapshot(quote.client) if quote.client_id else _lead_party(quote.lead)
    with override(party["language"]):
        locale = party["language"]
        meta = [
            (pgettext("quote", "Number"), quote.number),
            (_("Date"), _date(quote.issued_on, locale)),
            (_("Valid until"), _date(quote.valid_until, locale)),
        ]
        totals = [(_("Subtotal"), quote.subtotal_minor, False)]
        if quote.tax_minor:
            totals.append((_("Tax"), quote.tax_minor, False))
        totals.append((_("Total"), quote.total_minor, True))
        title = _("Quote") + (f" — {quote.title}" if quote.title else "")
        return _document(
            party=party,
            title=title,
            meta=meta,
            lines=list(quote.lines.all()),
            currency=quote.currency,
            totals=totals,
            notes=_lines_of(quote.notes),
        )


def quote_pdf(quote: Quote) -> bytes:
    """The quote as PDF, dated at its creation so the same quote gives the same bytes."""
    return render(quote_document(quote), timestamp=int(quote.created_at.timestamp()))


def check_contract_template(body: str) -> None:
    """Refuse a contract text with a syntax error or an unknown tag (ServiceError names it)."""
    from clientbase.marketing.templating import check

    check(body)


def template_preview(body: str) -> str:
    """A contract text filled with the example values of every tag."""
    from clientbase.marketing.templating import example_context, render

    return render(body, example_context())


def contract_text(contract: Contract, user=None) -> str:
    """The contract's template filled in for this contract, else its own terms."""
    from clientbase.marketing.templating import merge_context
    from clientbase.marketing.templating import render as fill

    if contract.template_id is None:
        return contract.terms
    quote = Quote.objects.filter(contract=contract).first()
    context = merge_context(
        client=contract.client,
        deal=contract.deal,
        contract=contract,
        quote=quote,
        user=user or contract.owner,
    )
    return fill(contract.template.body, context)


def contract_document(contract: Contract, user=None) -> dict:
    """What the contract shows: its parties, dates, lines, value and filled-in text."""
    party = client_snapshot(contract.client)
    text = contract_text(contract, user)
    with override(party["language"]):
        locale = party["language"]
        meta = [
            (pgettext("contract", "Number"), contract.number),
            (_("Starts"), _date(contract.starts_on, locale)),
            (_("Ends"), _date(contract.ends_on, locale) or "—"),
            (_("Status"), str(contract.get_status_display())),
        ]
        lines = list(contract.lines.all())
        totals = [(_("Contract value"), contract.value_minor, True)]
        document = _document(
            party=party,
            title=contract.title,
            meta=meta,
            lines=lines,
            currency=contract.currency,
            totals=totals,
            notes=[line.rstrip() for line in text.splitlines() if line.strip()],
        )
        document["labels"]["notes"] = _("Contract")
        return document


def contract_pdf(contract: Contract, user=None) -> bytes:
    """The contract as PDF from its template."""
    return render(contract_document(contract, user), timestamp=int(contract.created_at.timestamp()))


def send_quote_mail(quote_id: int, address: str) -> None:
    """Email one quote with its PDF to an address."""
    quote = Quote.objects.select_related("client", "lead").get(pk=quote_id)
    holder = quote.client or quote.lead
    with override(_language(holder.language)):
        subject = _("Quote %(number)s") % {"number": quote.number}
        body = _(
            "Dear %(name)s,\n\nplease find attached our quote %(number)s for %(total)s, "
            "valid until %(valid)s.\n\nKind regards,\n%(company)s"
        ) % {
            "name": holder.name,
            "number": quote.number,
            "total": Money(quote.total_minor, quote.currency).format(_language(holder.language)),
            "valid": quote.valid_until.isoformat(),
            "company": getattr(settings, "COMPANY_NAME", "Clientbase"),
        }
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
    message.attach(f"{quote.number}.pdf", quote_pdf(quote), "application/pdf")
    message.send()


def send_renewal_reminder(contract_id: int) -> None:
    """Tell a contract's owner that it ends this month and is due for renewal."""
    contract = Contract.objects.select_related("client", "owner").get(pk=contract_id)
    if not contract.owner or not contract.owner.email:
        return
    with override(_language(getattr(contract.owner, "language", "") or "en")):
        subject = _("Contract %(number)s ends on %(date)s") % {
            "number": contract.number,
            "date": contract.ends_on.isoformat(),
        }
        body = _(
            "Contract %(number)s (%(title)s) with %(client)s ends on %(date)s. "
            "Talk to the client about renewing it."
        ) % {
            "number": contract.number,
            "title": contract.title,
            "client": contract.client.name,
            "date": contract.ends_on.isoformat(),
        }
    EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [contract.owner.email]).send()
