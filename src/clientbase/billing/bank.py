"""Bank statements (BIL-11): import, match each payment to an invoice, post or hold it.

A payment is posted by itself only when everything agrees: exactly one invoice named in
the purpose text, issued to a client whose tax id is the payer's, still open, in the
payment's currency and owing exactly the amount. Anything else waits in the suspense
list with the reason, for a clerk to assign or set aside.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from clientbase.billing.models import BankPayment, BankStatement, Invoice, PaymentMethod
from clientbase.billing.statements import Statement, StatementError, StatementLine, parse_statement
from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.money import Money

MAX_STATEMENT_BYTES = 20 * 1024 * 1024
# Words and numbers of a purpose text; "88#72815" gives 88 and 72815 as well as the whole.
_TOKEN = re.compile(r"[^\s#№,;:()\"'«»]+")
_DIGITS = re.compile(r"\d+")


def _tax_key(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", text or "").upper()


def _candidates(purpose: str) -> set[str]:
    """Every piece of the purpose that could be an invoice number."""
    tokens = {t.strip(".-/") for t in _TOKEN.findall(purpose)}
    # Every invoice number has a digit; words without one never are.
    return {
        t
        for t in tokens | set(_DIGITS.findall(purpose))
        if t and len(t) <= 32 and _DIGITS.search(t)
    }


@dataclass(frozen=True)
class Match:
    """The invoice a statement line pays, or why none could be chosen."""

    invoice: Invoice | None
    reason: str = ""


def match_line(line: StatementLine, invoices_by_number: dict[str, Invoice]) -> Match:
    """Choose the invoice a payment pays; an exact match only, else the reason why not."""
    named = sorted(
        {invoices_by_number[c].pk: invoices_by_number[c] for c in _candidates(line.purpose)
         if c in invoices_by_number}.values(),
        key=lambda invoice: invoice.pk,
    )  # fmt: skip
    if not named:
        return Match(None, _("No invoice number found in the purpose."))
    payer = _tax_key(line.payer_tax_id)
    if not payer:
        return Match(None, _("The payer's tax id is missing, so the payer cannot be checked."))
    of_payer = [i for i in named if _tax_key(i.client.tax_id) == payer]
    if not of_payer:
        invoice = named[0]
        return Match(
            None,
            _("Invoice %(invoice)s belongs to %(client)s, whose tax id is not the payer's "
              "%(payer)s.")
            % {"invoice": invoice.number, "client": invoice.client.name, "payer": payer},
        )  # fmt: skip
    if len(of_payer) > 1:
        return Match(
            None,
            _("Several invoices of the payer are named: %(numbers)s.")
            % {"numbers": ", ".join(i.number for i in of_payer)},
        )
    invoice = of_payer[0]
    amount = Money.from_decimal(line.amount, line.currency)
    if invoice.status not in Invoice.OPEN or invoice.balance_minor <= 0:
        return Match(
            None,
            _("Invoice %(invoice)s is %(status)s.")
            % {"invoice": invoice.number, "status": Invoice.Status(invoice.status).label.lower()},
        )
    if invoice.currency != amount.currency:
        return Match(
            None,
            _("Invoice %(invoice)s is in %(billed)s; the payment is in %(paid)s.")
            % {"invoice": invoice.number, "billed": invoice.currency, "paid": amount.currency},
        )
    if invoice.balance_minor != amount.minor:
        return Match(
            None,
            _("Invoice %(invoice)s owes %(owed)s; the payment is %(paid)s.")
            % {"invoice": invoice.number, "owed": invoice.balance, "paid": amount},
        )
    return Match(invoice)


def _invoices_named(lines: list[StatementLine]) -> dict[str, Invoice]:
    """The issued invoices whose numbers appear in any purpose, read in a few queries."""
    wanted = sorted(set().union(*(_candidates(line.purpose) for line in lines)) if lines else [])
    found: dict[str, Invoice] = {}
    for start in range(0, len(wanted), 500):
        for invoice in (
            Invoice.objects.select_related("client")
            .filter(number__in=wanted[start : start + 500])
            .exclude(number="")
        ):
            found[invoice.number] = invoice
    return found


def _read(data: bytes) -> Statement:
    if len(data) > MAX_STATEMENT_BYTES:
        raise ServiceError(
            _("The file is larger than %(limit)s MB.") % {"limit": MAX_STATEMENT_BYTES >> 20},
            field="file",
        )
    try:
        return parse_statement(data)
    except StatementError as fault:
        raise ServiceError(str(fault), field="file") from fault


def statement_import(*, by, data: bytes, filename: str = "") -> BankStatement:
    """Read a statement, keep each new line, post the exact matches; the rest wait.

    A file that cannot be read is refused whole; lines imported before (the same bank id
    on the same account) are counted and skipped, so importing twice posts nothing twice.
    """
    from clientbase.billing.services import payments_settle_exactly

    statement = _read(data)
    with transaction.atomic():
        known = set()
        ids = [line.external_id for line in statement.lines]
        for start in range(0, len(ids), 500):
            known |= set(
                BankPayment.objects.filter(
                    account=statement.account, external_id__in=ids[start : start + 500]
                ).values_list("external_id", flat=True)
            )
        fresh = [line for line in statement.lines if line.external_id not in known]
        record = BankStatement.objects.create(
            format=statement.format,
            account=statement.account,
            filename=(filename or "")[:255],
            imported_by=by if getattr(by, "pk", None) else None,
            lines=len(statement.lines),
            duplicates=len(statement.lines) - len(fresh),
        )
        invoices = _invoices_named([line for line in fresh if line.incoming])
        items, exact = [], []
        for line in fresh:
            match = match_line(line, invoices) if line.incoming else Match(None)
            state = (
                BankPayment.State.OUTGOING
                if not line.incoming
                else BankPayment.State.POSTED
                if match.invoice
                else BankPayment.State.SUSPENSE
            )
            item = _item(record, statement, line, state, match)
            items.append(item)
            if match.invoice:
                exact.append(item)
        # Posted before the lines are written, so each line is inserted once, complete.
        if exact:
            paid = payments_settle_exactly(
                by=by, matches=[(i.invoice, i.amount, i.booked_on, _reference(i)) for i in exact]
            )
            for item, payment in zip(exact, paid, strict=True):
                item.payment = payment
                if payment is None:
                    item.state, item.invoice = BankPayment.State.SUSPENSE, None
                    item.reason = _(
                        "Another payment settled the invoice first, or it changed meanwhile."
                    )
        try:
            with transaction.atomic():
                BankPayment.objects.bulk_create(items, batch_size=1000)
        except IntegrityError:
            raise ConflictError(
                _("The same statement is being imported by someone else right now."),
                field="file",
            ) from None
        counts = defaultdict(int)
        for item in items:
            counts[item.state] += 1
        record.posted = counts[BankPayment.State.POSTED]
        record.suspense = counts[BankPayment.State.SUSPENSE]
        record.outgoing = counts[BankPayment.State.OUTGOING]
        record.save(update_fields=["posted", "suspense", "outgoing"])
    return record


def _item(record, statement, line: StatementLine, state: str, match: Match) -> BankPayment:
    amount = Money.from_decimal(line.amount, line.currency)
    return BankPayment(
        statement=record,
        line_no=line.line_no,
        account=statement.account,
        external_id=line.external_id,
        booked_on=line.booked_on,
        amount_minor=amount.minor,
        currency=amount.currency,
        payer_name=line.payer_name[:300],
        payer_tax_id=line.payer_tax_id[:32],
        payer_account=line.payer_account[:64],
        purpose=line.purpose,
        state=state,
        reason=match.reason[:500],
        invoice=match.invoice,
    )


def _reference(item: BankPayment) -> str:
    return f"{item.payer_name}: {item.purpose}"[:200]


def _locked_suspense(item: BankPayment) -> BankPayment:
    item = BankPayment.objects.select_for_update().get(pk=item.pk)
    if item.state != BankPayment.State.SUSPENSE:
        raise ConflictError(
            _("This payment was already dealt with: %(state)s.")
            % {"state": BankPayment.State(item.state).label.lower()},
            field="state",
        )
    return item


def bank_payment_assign(
    *, by, item: BankPayment, invoice: Invoice | None = None, client: Client | None = None
) -> BankPayment:
    """Post a waiting bank payment to an invoice (or to a client's credit balance)."""
    from clientbase.billing.services import payment_record

    if invoice is None and client is None:
        raise ServiceError(_("Choose the invoice or the client it pays."), field="invoice")
    with transaction.atomic():
        item = _locked_suspense(item)
        client = invoice.client if invoice is not None else client
        item.payment = payment_record(
            by=by,
            client=client,
            amount=item.amount,
            method=PaymentMethod.BANK_TRANSFER,
            invoices=[(invoice, None)] if invoice is not None else [],
            received_on=item.booked_on,
            reference=_reference(item),
        )
        item.state, item.invoice = BankPayment.State.ASSIGNED, invoice
        item.decided_by, item.decided_at = by, clock.now()
        item.save(update_fields=["payment", "state", "invoice", "decided_by", "decided_at"])
    return item


def bank_payment_ignore(*, by, item: BankPayment, reason: str) -> BankPayment:
    """Set a waiting line aside as not a client's payment (a refund, a bank fee…)."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say what the money is, if not a client's payment."), field="reason")
    with transaction.atomic():
        item = _locked_suspense(item)
        item.state, item.reason = BankPayment.State.IGNORED, reason[:500]
        item.decided_by, item.decided_at = by, clock.now()
        item.save(update_fields=["state", "reason", "decided_by", "decided_at"])
    return item


def suggestions(item: BankPayment, invoices) -> list[Invoice]:
    """Open invoices a clerk most likely wants: those named in the purpose, then the open
    invoices of the clients with the payer's tax id, exact amounts first."""
    named = list(invoices.filter(number__in=_candidates(item.purpose)).exclude(number=""))
    payer = _tax_key(item.payer_tax_id)
    of_payer = (
        list(invoices.filter(client__tax_id=payer, status__in=Invoice.OPEN)[:20]) if payer else []
    )
    seen, ordered = set(), []
    for invoice in named + of_payer:
        if invoice.pk not in seen and invoice.status in Invoice.OPEN:
            seen.add(invoice.pk)
            ordered.append(invoice)
    ordered.sort(key=lambda i: (i.balance_minor != item.amount_minor, -i.pk))
    return ordered[:6]
