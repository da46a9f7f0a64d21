"""Every write of billing: orders, services, invoices and money movements, each posted to the
ledger in the action's own transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from itertools import chain

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clientbase.billing.calc import aligned_due, line_amounts, next_due, prorate
from clientbase.billing.credit import after_commit_check, check_limit
from clientbase.billing.ledger import Posting, credit_held, ledger_post
from clientbase.billing.models import (
    BilledPeriod,
    CreditLimit,
    CreditNote,
    Invoice,
    InvoiceLine,
    LedgerEntry,
    Order,
    OrderItem,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    Receipt,
    Refund,
    Service,
)
from clientbase.catalog.models import CYCLE_MONTHS, Cycle, Product, PromoCode
from clientbase.catalog.pricing import (
    Quote,
    check_currency,
    product_quote,
    promo_applies_to,
    promo_check,
    tax_rate_for,
)
from clientbase.clients.models import Client
from clientbase.clients.services import history_ids
from clientbase.core import clock
from clientbase.core.audit import audit_create, audit_update, snapshot
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.events import new_event, record_event, record_events, register_event_type
from clientbase.core.models import EventCategory
from clientbase.core.money import Money, round_half_up
from clientbase.core.numbering import next_number, register_series, reserve_numbers

register_series("order", prefix="ORD-", padding=5)
register_series("invoice", prefix="", padding=0)
register_series("payment", prefix="PAY-", padding=6)
register_series("refund", prefix="REF-", padding=5)
register_series("credit_note", prefix="CN-", padding=5)
register_series("receipt", prefix="RCP-", padding=6)

for code, category, message in [
    ("order.created", EventCategory.SALES, gettext_lazy("Order %(reference)s placed")),
    ("order.accepted", EventCategory.SALES, gettext_lazy("Order %(reference)s accepted")),
    (
        "order.cancelled",
        EventCategory.SALES,
        gettext_lazy("Order %(reference)s cancelled: %(reason)s"),
    ),
    (
        "service.status",
        EventCategory.CHARGES,
        gettext_lazy("%(product)s: %(old)s → %(new)s (%(reason)s)"),
    ),
    (
        "service.transferred",
        EventCategory.CHARGES,
        gettext_lazy("%(product)s transferred to %(to)s"),
    ),
    ("service.changed", EventCategory.CHARGES, gettext_lazy("%(product)s changed: %(change)s")),
    ("service.updated", EventCategory.CHARGES, gettext_lazy("%(product)s: dates changed")),
    (
        "invoice.issued",
        EventCategory.AR,
        gettext_lazy("Invoice %(reference)s issued for %(amount)s"),
    ),
    (
        "invoice.cancelled",
        EventCategory.AR,
        gettext_lazy("Invoice %(reference)s cancelled: %(reason)s"),
    ),
    ("invoice.sent", EventCategory.AR, gettext_lazy("Invoice %(reference)s emailed to %(to)s")),
    (
        "invoice.overdue",
        EventCategory.AR,
        gettext_lazy("Invoice %(reference)s overdue: %(amount)s owed"),
    ),
    (
        "payment.recorded",
        EventCategory.PAYMENTS,
        gettext_lazy("Payment %(reference)s of %(amount)s"),
    ),
    (
        "credit.applied",
        EventCategory.PAYMENTS,
        gettext_lazy("Credit of %(amount)s applied to %(invoice)s"),
    ),
    ("refund.recorded", EventCategory.PAYMENTS, gettext_lazy("Refund %(reference)s of %(amount)s")),
    ("credit_note.created", EventCategory.AR, gettext_lazy("%(kind)s %(reference)s of %(amount)s")),
    ("credit.adjusted", EventCategory.AR, gettext_lazy("Credit balance adjusted by %(amount)s")),
]:
    register_event_type(code, category, message)


# ----------------------------------------------------------------------------- helpers


def _money(value: Money, currency: str, field_name: str = "amount", *, positive=True) -> Money:
    """The amount if it is in the expected currency (and above zero when asked)."""
    if value.currency != currency:
        raise ServiceError(
            _("The amount is in %(given)s; it must be in %(expected)s.")
            % {"given": value.currency, "expected": currency},
            field=field_name,
        )
    if positive and value.minor <= 0:
        raise ServiceError(_("The amount must be above zero."), field=field_name)
    return value


# Far beyond any invoice, and well inside the 64-bit columns sums are kept in.
MAX_MINOR = 10**15


def parse_money(text, currency, field_name: str = "amount") -> Money:
    """A decimal string and currency code as typed, or a clear error naming the field."""
    currency = check_currency(currency, "currency")
    try:
        amount = Money.from_decimal(Decimal(str(text).strip()), currency)
    except (InvalidOperation, ValueError):
        raise ServiceError(
            _("Write the amount as a number such as 120.50."), field=field_name
        ) from None
    if abs(amount.minor) >= MAX_MINOR:
        raise ServiceError(_("The amount is too large."), field=field_name)
    return amount


def _client_money(amount: Money, client: Client, other_currency) -> None:
    """Refuse an amount that is not above zero in the client's own currency."""
    if amount.currency != client.currency:
        raise ServiceError(
            str(other_currency) % {"billed": client.currency, "paid": amount.currency},
            field="currency",
        )
    _money(amount, client.currency)


def _live_client(client: Client) -> Client:
    if client.merged_into_id or client.deleted_at:
        raise ServiceError(_("This client was merged or deleted."), field="client")
    return client


def _locked_client(client: Client) -> Client:
    return Client.everything.select_for_update().get(pk=client.pk)


def tax_place(client: Client, addresses: list) -> tuple[str, str]:
    """The country and region a client is taxed in: its billing address, else its first
    address (in the addresses' order), else its own country."""
    address = next((a for a in addresses if a.type == "billing"), None) or (
        addresses[0] if addresses else None
    )
    return (address.country if address else "") or client.country, (
        address.region if address else ""
    )


def _client_tax(client: Client) -> Decimal:
    country, region = tax_place(client, list(client.addresses.all()))
    return tax_rate_for(country=country, region=region, exempt=client.tax_exempt)


def _d(value: str | int | Decimal, field_name: str) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ServiceError(_("Write a number such as 12.5."), field=field_name) from None
    if not number.is_finite():
        raise ServiceError(_("Write a number such as 12.5."), field=field_name)
    return number


# ----------------------------------------------------------------------------- invoices


@dataclass
class LineSpec:
    """A line to put on a draft invoice."""

    description: str
    unit_price: Decimal
    quantity: Decimal = Decimal(1)
    discount_percent: Decimal = Decimal(0)
    taxable: bool = True
    tax_rate: Decimal | None = None  # None: the client's rate
    tax_inclusive: bool = False
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    service: Service | None = None


def _clean_line(spec: LineSpec) -> LineSpec:
    errors = {}
    spec.description = (spec.description or "").strip()
    if not spec.description:
        errors["description"] = _("Describe what the line is for.")
    spec.quantity = _d(spec.quantity, "quantity")
    spec.unit_price = _d(spec.unit_price, "unit_price")
    spec.discount_percent = _d(spec.discount_percent or 0, "discount_percent")
    if spec.quantity <= 0:
        errors["quantity"] = _("The quantity must be above zero.")
    if not Decimal(0) <= spec.discount_percent <= Decimal(100):
        errors["discount_percent"] = _("A discount is between 0 and 100 %.")
    if spec.tax_rate is not None:
        spec.tax_rate = _d(spec.tax_rate, "tax_rate")
        if not Decimal(0) <= spec.tax_rate <= Decimal(100):
            errors["tax_rate"] = _("A tax rate is between 0 and 100 %.")
    if spec.period_start and spec.period_end and spec.period_end < spec.period_start:
        errors["period_end"] = _("The period cannot end before it starts.")
    if abs(spec.unit_price) >= Decimal(10) ** 13 or abs(spec.quantity) >= Decimal(10) ** 8:
        errors["unit_price"] = _("The amount is too large.")
    if errors:
        raise ServiceError(errors=errors)
    return spec


def _line_from_spec(invoice: Invoice, spec: LineSpec, position: int, rate: Decimal) -> InvoiceLine:
    tax_rate = rate if spec.tax_rate is None else spec.tax_rate
    amounts = line_amounts(
        quantity=spec.quantity,
        unit_price=spec.unit_price,
        discount_percent=spec.discount_percent,
        tax_rate=tax_rate,
        taxable=spec.taxable,
        tax_inclusive=spec.tax_inclusive,
        currency=invoice.currency,
    )
    return InvoiceLine(
        invoice=invoice,
        position=position,
        service=spec.service,
        description=spec.description[:500],
        period_start=spec.period_start,
        period_end=spec.period_end,
        quantity=spec.quantity,
        unit_price=spec.unit_price,
        discount_percent=spec.discount_percent,
        taxable=spec.taxable,
        tax_rate=tax_rate if spec.taxable else Decimal(0),
        tax_inclusive=spec.tax_inclusive,
        net_minor=amounts.net_minor,
        tax_minor=amounts.tax_minor,
    )


def _recompute(invoice: Invoice) -> None:
    lines = list(invoice.lines.all())
    invoice.subtotal_minor = sum(line.net_minor for line in lines)
    invoice.tax_minor = sum(line.tax_minor for line in lines)
    invoice.total_minor = invoice.subtotal_minor + invoice.tax_minor
    starts = [line.period_start for line in lines if line.period_start]
    invoice.period_start = min(starts) if starts else None
    invoice.version += 1
    invoice.save(
        update_fields=["subtotal_minor", "tax_minor", "total_minor", "period_start", "version"]
    )


def _draft_for(client: Client, *, by, issued_on=None, due_days: int = 7, **fields) -> Invoice:
    issued_on = issued_on or clock.today()
    return Invoice.objects.create(
        client=client,
        currency=client.currency,
        issued_on=issued_on,
        due_on=issued_on + dt.timedelta(days=due_days),
        **fields,
    )


def invoice_create(
    *,
    by,
    client: Client,
    lines: list[LineSpec] = (),
    issued_on: dt.date | None = None,
    due_on: dt.date | None = None,
    notes: str = "",
) -> Invoice:
    """A draft invoice for a client, in the client's currency."""
    _live_client(client)
    specs = [_clean_line(spec) for spec in lines]
    with transaction.atomic():
        invoice = _draft_for(client, by=by, issued_on=issued_on, notes=notes)
        if due_on:
            _check_dates(invoice.issued_on, due_on)
            invoice.due_on = due_on
            invoice.save(update_fields=["due_on"])
        _add_lines(invoice, specs)
        audit_create(invoice, by=by)
    return invoice


def _add_lines(invoice: Invoice, specs: list[LineSpec]) -> None:
    if not specs:
        return
    rate = _client_tax(invoice.client)
    start = invoice.lines.count()
    InvoiceLine.objects.bulk_create(
        [_line_from_spec(invoice, spec, start + i, rate) for i, spec in enumerate(specs)]
    )
    _recompute(invoice)


def _check_dates(issued_on: dt.date, due_on: dt.date) -> None:
    if due_on < issued_on:
        raise ServiceError(_("The due date cannot be before the invoice date."), field="due_on")


def _locked_draft(invoice: Invoice) -> Invoice:
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if not invoice.is_draft:
        raise ConflictError(
            _("Invoice %(number)s is issued: it changes only by payments, credit notes and "
              "adjustments.") % {"number": invoice.number},
            field="status",
        )  # fmt: skip
    return invoice


def invoice_update(
    *, by, invoice: Invoice, issued_on: dt.date, due_on: dt.date, notes: str = ""
) -> Invoice:
    """Change a draft's dates and notes."""
    _check_dates(issued_on, due_on)
    with transaction.atomic():
        invoice = _locked_draft(invoice)
        before = snapshot(invoice)
        invoice.issued_on, invoice.due_on, invoice.notes = issued_on, due_on, notes.strip()
        invoice.version += 1
        invoice.save(update_fields=["issued_on", "due_on", "notes", "version"])
        audit_update(invoice, before, by=by)
    return invoice


def invoice_line_add(*, by, invoice: Invoice, line: LineSpec) -> InvoiceLine:
    """Add a line to a draft."""
    spec = _clean_line(line)
    with transaction.atomic():
        invoice = _locked_draft(invoice)
        _add_lines(invoice, [spec])
        return invoice.lines.order_by("-position", "-id").first()


def invoice_line_update(*, by, line: InvoiceLine, spec: LineSpec) -> InvoiceLine:
    """Rewrite a line of a draft."""
    spec = _clean_line(spec)
    with transaction.atomic():
        invoice = _locked_draft(line.invoice)
        fresh = _line_from_spec(invoice, spec, line.position, _client_tax(invoice.client))
        fresh.pk, fresh.service_id = line.pk, line.service_id
        fresh.save()
        _recompute(invoice)
    return fresh


def invoice_line_delete(*, by, line: InvoiceLine) -> None:
    """Remove a line from a draft."""
    with transaction.atomic():
        invoice = _locked_draft(line.invoice)
        line.delete()
        _recompute(invoice)


def invoice_issue(*, by, invoice: Invoice) -> Invoice:
    """Number the draft, freeze it with a snapshot of the client and post what it claims."""
    from clientbase.billing.pdf import client_snapshot

    with transaction.atomic():
        invoice = _locked_draft(invoice)
        client = _live_client(invoice.client)
        if not invoice.lines.exists():
            raise ServiceError(_("Add at least one line before issuing."), field="lines")
        if invoice.total_minor < 0:
            raise ServiceError(
                _("The total is negative: issue a credit note instead."), field="lines"
            )
        _check_dates(invoice.issued_on, invoice.due_on)
        if not invoice.credit_top_up:
            check_limit(client, invoice.total)
        after_commit_check(client.pk)
        number = next_number("invoice")
        invoice.number, invoice.number_value = number.text, number.value
        invoice.snapshot = client_snapshot(client)
        invoice.hold_reason = ""
        invoice.balance_minor = invoice.total_minor
        invoice.status = Invoice.Status.UNPAID if invoice.total_minor else Invoice.Status.PAID
        if not invoice.total_minor:
            invoice.paid_on = clock.today()
        invoice.version += 1
        invoice.save()
        record_event(
            "invoice.issued",
            by=by,
            client=client,
            subject=invoice,
            amount=invoice.total,
            reference=invoice.number,
        )
        ledger_post(
            [
                Posting(
                    client.pk,
                    LedgerEntry.Account.RECEIVABLE,
                    LedgerEntry.Kind.INVOICE,
                    invoice.total,
                    invoice.pk,
                    invoice.number,
                )
            ],
            by=by,
            owner_of=client,
        )
    return invoice


def credit_top_up_invoice(*, by, client: Client, amount: Money, due_days: int = 7) -> Invoice:
    """Issue an invoice for credit paid in advance; each payment on it adds to the credit."""
    client = _live_client(client)
    _client_money(
        amount,
        client,
        gettext_lazy("The client is billed in %(billed)s; the top-up is in %(paid)s."),
    )
    line = LineSpec(_("Credit top-up"), amount.amount, taxable=False)
    with transaction.atomic():
        invoice = _draft_for(client, by=by, due_days=due_days, credit_top_up=True)
        _add_lines(invoice, [_clean_line(line)])
        audit_create(invoice, by=by)
        return invoice_issue(by=by, invoice=invoice)


def invoice_cancel(*, by, invoice: Invoice, reason: str) -> Invoice:
    """Cancel a draft, or an issued invoice nobody has paid or credited yet."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Give a reason for the cancellation."), field="reason")
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status in (Invoice.Status.CANCELLED, Invoice.Status.REFUNDED):
            raise ConflictError(_("The invoice is already closed."), field="status")
        if invoice.paid_minor or invoice.credited_minor:
            raise ConflictError(
                _("Money was already paid or credited on this invoice: refund or credit it "
                  "instead."),
                field="status",
            )  # fmt: skip
        claim = invoice.balance
        fields = ["status", "balance_minor", "version"]
        if invoice.is_draft:
            # A void document keeps a number of its own (the database requires one for any
            # invoice past draft), so the series stays gapless; a draft never posted a claim.
            number = next_number("invoice")
            invoice.number, invoice.number_value = number.text, number.value
            fields += ["number", "number_value"]
            claim = Money.zero(invoice.currency)
        invoice.status = Invoice.Status.CANCELLED
        invoice.balance_minor = 0
        invoice.version += 1
        invoice.save(update_fields=fields)
        record_event(
            "invoice.cancelled",
            by=by,
            client=invoice.client,
            subject=invoice,
            reference=invoice.number or str(invoice),
            details={"reason": reason},
        )
        if claim:
            ledger_post(
                [
                    Posting(
                        invoice.client_id,
                        LedgerEntry.Account.RECEIVABLE,
                        LedgerEntry.Kind.CANCELLATION,
                        -claim,
                        invoice.pk,
                        invoice.number,
                    )
                ],
                by=by,
                owner_of=invoice.client,
            )
    return invoice


def invoices_mark_overdue(*, day: dt.date | None = None, batch: int = 1000) -> int:
    """Mark issued invoices still owed after their due date as overdue; how many were marked."""
    day = day or clock.today()
    marked = 0
    while True:
        # In batches, each its own transaction, so a long list never holds every row locked.
        with transaction.atomic():
            invoices = list(
                Invoice.objects.select_for_update(of=("self",))
                .select_related("client")
                .filter(
                    status__in=(Invoice.Status.UNPAID, Invoice.Status.PARTIALLY_PAID),
                    due_on__lt=day,
                    balance_minor__gt=0,
                )
                .order_by("pk")[:batch]
            )
            for invoice in invoices:
                invoice.status = Invoice.Status.OVERDUE
                invoice.version += 1
                invoice.save(update_fields=["status", "version"])
                record_event(
                    "invoice.overdue",
                    by=None,
                    client=invoice.client,
                    subject=invoice,
                    amount=invoice.balance,
                    reference=invoice.number,
                    details={"due_on": invoice.due_on.isoformat()},
                )
        if not invoices:
            return marked
        marked += len(invoices)


def invoice_send(*, by, invoice: Invoice, to: str | None = None) -> Invoice:
    """Email an issued invoice with its PDF, after the transaction commits."""
    from clientbase.billing.mail import send_invoice_mail

    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.is_draft:
            raise ConflictError(_("Issue the invoice before sending it."), field="status")
        address = (to or invoice.snapshot.get("email") or invoice.client.email).strip()
        if not address:
            raise ServiceError(_("The client has no email address."), field="to")
        invoice.sent_at = clock.now()
        invoice.save(update_fields=["sent_at"])
        record_event(
            "invoice.sent",
            by=by,
            client=invoice.client,
            subject=invoice,
            reference=invoice.number,
            details={"to": address},
        )
        invoice_id = invoice.pk
        transaction.on_commit(lambda: send_invoice_mail(invoice_id, address))
    return invoice


def _settle_status(invoice: Invoice) -> list[str]:
    """Set the status from the balance; make the receipt when it becomes paid."""
    fields = [
        "status",
        "balance_minor",
        "paid_minor",
        "credited_minor",
        "refunded_minor",
        "paid_on",
    ]
    if invoice.balance_minor <= 0:
        if invoice.status != Invoice.Status.PAID:
            invoice.status = Invoice.Status.PAID
            invoice.paid_on = clock.today()
            if not Receipt.objects.filter(invoice=invoice).exists():
                Receipt.objects.create(
                    number=next_number("receipt").text,
                    client_id=invoice.client_id,
                    invoice=invoice,
                    amount_minor=invoice.paid_minor,
                    currency=invoice.currency,
                )
    elif invoice.balance_minor < invoice.total_minor and invoice.status == Invoice.Status.UNPAID:
        invoice.status = Invoice.Status.PARTIALLY_PAID
    elif (
        invoice.status == Invoice.Status.COLLECTIONS
        and invoice.collections_floor_minor is not None
        and invoice.balance_minor <= invoice.collections_floor_minor
    ):
        # The minimum is paid: the invoice leaves collections and its scenario ends.
        invoice.status, invoice.dunning_ended = Invoice.Status.OVERDUE, True
        fields.append("dunning_ended")
    invoice.version += 1
    return [*fields, "version"]


# ----------------------------------------------------------------------------- payments


def _locked_open_invoices(
    client: Client, invoices: list[Invoice], currency: str, *, paid_ok: bool = False
):
    ids = sorted({inv.pk for inv in invoices})
    locked = {
        inv.pk: inv for inv in Invoice.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    }
    family = set(history_ids(client))
    for inv in locked.values():
        if inv.client_id not in family:
            raise ServiceError(
                _("Invoice %(number)s belongs to another client.") % {"number": inv.number},
                field="invoices",
            )
        # A payment may name an invoice another clerk paid meanwhile: its money goes to credit.
        if inv.status not in Invoice.OPEN and not (paid_ok and inv.status == Invoice.Status.PAID):
            raise ConflictError(
                _("Invoice %(number)s is %(status)s: there is nothing to pay.")
                % {"number": inv.number or inv.pk, "status": Invoice.Status(inv.status).label},
                field="invoices",
            )
        if inv.currency != currency:
            raise ServiceError(
                _("Invoice %(number)s is in %(invoice)s; the payment is in %(payment)s.")
                % {"number": inv.number, "invoice": inv.currency, "payment": currency},
                field="currency",
            )
    return locked


def payment_record(
    *,
    by,
    client: Client,
    amount: Money,
    method: str,
    invoices: list[tuple[Invoice, Money | None]] = (),
    received_on: dt.date | None = None,
    reference: str = "",
) -> Payment:
    """Record money received and spread it over invoices; what is left goes to credit.

    An allocation of None takes what the invoice still owes. Invoices are locked first, so
    two clerks paying one invoice at once both succeed and the later one's excess becomes
    credit rather than paying the invoice twice.
    """
    _live_client(client)
    if method not in PaymentMethod.values:
        raise ServiceError(_("Choose how the money was paid."), field="method")
    _client_money(
        amount,
        client,
        gettext_lazy("The client is billed in %(billed)s; the payment is in %(paid)s."),
    )
    if received_on and received_on > clock.today():
        raise ServiceError(_("A payment cannot be received in the future."), field="received_on")
    wanted_total = sum((a.minor for _inv, a in invoices if a is not None), 0)
    for _inv, alloc in invoices:
        if alloc is not None:
            _money(alloc, amount.currency, "invoices")
    if wanted_total > amount.minor:
        raise ServiceError(_("The allocations add up to more than the payment."), field="invoices")
    named = [inv.pk for inv, _alloc in invoices]
    if len(named) != len(set(named)):
        # Each share is taken from what the invoice owes before the payment: twice would pay
        # it twice over.
        raise ServiceError(_("An invoice appears twice in the payment."), field="invoices")
    with transaction.atomic():
        _locked_client(client)
        locked = _locked_open_invoices(
            client, [inv for inv, _a in invoices], amount.currency, paid_ok=True
        )
        # What the clerk asked for on each invoice, but never more than is still owed now.
        left, shares = amount.minor, []
        for inv, alloc in invoices:
            invoice = locked[inv.pk]
            share = min(alloc.minor if alloc is not None else left, invoice.balance_minor, left)
            if share > 0:
                shares.append((invoice, share))
                left -= share
        payment = Payment.objects.create(
            number=next_number("payment").text,
            client=client,
            method=method,
            amount_minor=amount.minor,
            currency=amount.currency,
            received_on=received_on or clock.today(),
            reference=reference.strip()[:200],
            to_credit_minor=left,
            created_by=by if getattr(by, "pk", None) else None,
        )
        PaymentAllocation.objects.bulk_create(
            PaymentAllocation(payment=payment, invoice=invoice, amount_minor=share)
            for invoice, share in shares
        )
        postings = []
        for invoice, share in shares:
            invoice.balance_minor -= share
            invoice.paid_minor += share
            invoice.save(update_fields=_settle_status(invoice))
            postings.append(
                Posting(
                    client.pk,
                    LedgerEntry.Account.RECEIVABLE,
                    LedgerEntry.Kind.PAYMENT,
                    Money(-share, amount.currency),
                    invoice.pk,
                    payment.number,
                )
            )
            if invoice.credit_top_up:
                postings.append(
                    Posting(client.pk, LedgerEntry.Account.CREDIT, LedgerEntry.Kind.TOP_UP,
                            Money(-share, amount.currency), None, invoice.number)
                )  # fmt: skip
        if left:
            postings.append(
                Posting(
                    client.pk,
                    LedgerEntry.Account.CREDIT,
                    LedgerEntry.Kind.OVERPAYMENT,
                    Money(-left, amount.currency),
                    None,
                    payment.number,
                )
            )
        record_event(
            "payment.recorded",
            by=by,
            client=client,
            subject=payment,
            amount=amount,
            reference=payment.number,
            details={"method": method, "to_credit": left},
        )
        _after_settling(client, by)
        after_commit_check(client.pk)
        ledger_post(postings, by=by, owner_of=client)
    return payment


def payments_settle_exactly(
    *, by, matches: list[tuple[Invoice, Money, dt.date, str]]
) -> list[Payment | None]:
    """Record many bank transfers that each pay one invoice exactly, with bulk writes.

    Runs inside the caller's transaction. A match whose invoice changed meanwhile (paid,
    cancelled, another balance) gets None and nothing is written for it.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("payments are recorded inside the caller's transaction")
    ids = sorted({invoice.pk for invoice, *_rest in matches})
    locked = {
        inv.pk: inv
        for inv in Invoice.objects.select_for_update(of=("self",))
        .select_related("client")
        .filter(pk__in=ids)
        .order_by("pk")
    }
    chosen, results, seen = [], [], set()
    for invoice, amount, day, reference in matches:
        current = locked.get(invoice.pk)
        fits = (
            current is not None
            and current.pk not in seen
            and current.status in Invoice.OPEN
            and not current.credit_top_up
            and current.currency == amount.currency
            and current.balance_minor == amount.minor > 0
            and not current.client.merged_into_id
            and not current.client.deleted_at
        )
        results.append(len(chosen) if fits else None)
        if fits:
            seen.add(current.pk)
            chosen.append((current, amount, day, reference))
    if not chosen:
        return [None] * len(matches)
    numbers = reserve_numbers("payment", len(chosen))
    receipted = set(Receipt.objects.filter(invoice__in=ids).values_list("invoice_id", flat=True))
    to_receipt = [inv for inv, *_rest in chosen if inv.pk not in receipted]
    receipt_numbers = iter(reserve_numbers("receipt", len(to_receipt)) if to_receipt else [])
    today = clock.today()
    payments = Payment.objects.bulk_create(
        [
            Payment(number=n.text, client_id=inv.client_id, method=PaymentMethod.BANK_TRANSFER,
                    amount_minor=amount.minor, currency=amount.currency, received_on=day,
                    reference=reference[:200], to_credit_minor=0,
                    created_by=by if getattr(by, "pk", None) else None)
            for n, (inv, amount, day, reference) in zip(numbers, chosen, strict=True)
        ],
        batch_size=1000,
    )  # fmt: skip
    PaymentAllocation.objects.bulk_create(
        [PaymentAllocation(payment=p, invoice=inv, amount_minor=amount.minor)
         for p, (inv, amount, *_rest) in zip(payments, chosen, strict=True)],
        batch_size=1000,
    )  # fmt: skip
    events, postings, owners = [], [], {}
    for payment, (invoice, amount, _day, _ref) in zip(payments, chosen, strict=True):
        invoice.paid_minor += amount.minor
        invoice.balance_minor = 0
        invoice.status, invoice.paid_on = Invoice.Status.PAID, today
        invoice.version += 1
        owners[invoice.client_id] = invoice.client
        events.append(
            new_event(
                "payment.recorded",
                by=by,
                client=invoice.client,
                subject=payment,
                amount=amount,
                reference=payment.number,
                details={"method": PaymentMethod.BANK_TRANSFER, "to_credit": 0},
            )
        )
        postings.append(
            Posting(
                invoice.client_id,
                LedgerEntry.Account.RECEIVABLE,
                LedgerEntry.Kind.PAYMENT,
                -amount,
                invoice.pk,
                payment.number,
            )
        )
    # One statement per batch: each invoice's balance is exactly what is paid.
    paid_ids = [inv.pk for inv, *_rest in chosen]
    for start in range(0, len(paid_ids), 500):
        Invoice.objects.filter(pk__in=paid_ids[start : start + 500]).update(
            paid_minor=F("paid_minor") + F("balance_minor"),
            balance_minor=0,
            status=Invoice.Status.PAID,
            paid_on=today,
            version=F("version") + 1,
        )
    Receipt.objects.bulk_create(
        [Receipt(number=next(receipt_numbers).text, client_id=inv.client_id, invoice=inv,
                 amount_minor=inv.paid_minor, currency=inv.currency) for inv in to_receipt],
        batch_size=1000,
    )  # fmt: skip
    record_events(events)
    from clientbase.billing.dunning import unsuspend_paid

    unsuspend_paid(clients=list(owners), by=by)
    for client_id in (
        CreditLimit.objects.filter(client__in=list(owners))
        .values_list("client_id", flat=True)
        .distinct()
    ):
        after_commit_check(client_id)
    ledger_post(postings, by=by, owner_of=None, owners=owners)
    return [None if index is None else payments[index] for index in results]


def _after_settling(client: Client, by) -> None:
    """Services dunning suspended come back once what suspended them is paid."""
    from clientbase.billing.dunning import unsuspend_paid

    unsuspend_paid(client=client, by=by)


def credit_apply(*, by, invoice: Invoice, amount: Money | None = None) -> Money:
    """Pay an invoice from the client's credit balance (all it can, unless an amount is given)."""
    with transaction.atomic():
        client = _locked_client(invoice.client)
        invoice = _locked_open_invoices(client, [invoice], invoice.currency)[invoice.pk]
        if invoice.credit_top_up:
            raise ConflictError(
                _("A credit top-up is paid with money, not with credit."), field="invoice"
            )
        held = credit_held(history_ids(client), invoice.currency)
        if amount is not None:
            _money(amount, invoice.currency)
            if amount > held:
                raise ServiceError(
                    _("The client has only %(held)s of credit.") % {"held": held}, field="amount"
                )
            if amount.minor > invoice.balance_minor:
                raise ServiceError(
                    _("The invoice owes only %(owed)s.") % {"owed": invoice.balance},
                    field="amount",
                )
        share = amount.minor if amount is not None else min(held.minor, invoice.balance_minor)
        if share <= 0:
            raise ServiceError(_("The client has no credit to apply."), field="amount")
        applied = Money(share, invoice.currency)
        invoice.balance_minor -= share
        invoice.paid_minor += share
        invoice.save(update_fields=_settle_status(invoice))
        record_event(
            "credit.applied",
            by=by,
            client=client,
            subject=invoice,
            amount=applied,
            reference=invoice.number,
            details={"invoice": invoice.number},
        )
        _after_settling(client, by)
        ledger_post(
            [
                Posting(client.pk, LedgerEntry.Account.CREDIT, LedgerEntry.Kind.CREDIT_APPLIED,
                        applied, None, invoice.number),
                Posting(client.pk, LedgerEntry.Account.RECEIVABLE,
                        LedgerEntry.Kind.CREDIT_APPLIED, -applied, invoice.pk, invoice.number),
            ],
            by=by,
            owner_of=client,
        )  # fmt: skip
    return applied


def refund_record(
    *,
    by,
    amount: Money,
    destination: str,
    reason: str,
    invoice: Invoice | None = None,
    client: Client | None = None,
    method: str = "",
) -> Refund:
    """Give money back: what was paid on an invoice (to credit or out), or credit held (out)."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Give a reason for the refund."), field="reason")
    if destination not in Refund.Destination.values:
        raise ServiceError(_("Choose where the refund goes."), field="destination")
    if invoice is None and client is None:
        raise ServiceError(_("Choose an invoice or a client."), field="invoice")
    if invoice is None and destination == Refund.Destination.CREDIT:
        raise ServiceError(_("Credit held can only be paid out."), field="destination")
    if destination == Refund.Destination.OUT and method not in PaymentMethod.values:
        raise ServiceError(_("Choose how the money is paid out."), field="method")
    client = invoice.client if invoice is not None else client
    _money(amount, invoice.currency if invoice else amount.currency)
    with transaction.atomic():
        client = _locked_client(client)
        postings = []
        if invoice is not None:
            invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
            if invoice.credit_top_up:
                raise ConflictError(
                    _("What was paid on a credit top-up is credit now: refund it from the "
                      "credit balance."),
                    field="invoice",
                )  # fmt: skip
            # What was paid and not yet given back, but never more than the invoice still
            # claims: a credit note beyond what was owed already returned money as credit.
            refundable = max(
                0,
                min(
                    invoice.paid_minor - invoice.refunded_minor,
                    invoice.total_minor - invoice.credited_minor - invoice.refunded_minor,
                ),
            )
            if amount.minor > refundable:
                raise ServiceError(
                    _("Only %(refundable)s was paid on this invoice and not yet refunded.")
                    % {"refundable": invoice.money(refundable)},
                    field="amount",
                )
            invoice.refunded_minor += amount.minor
            if amount.minor == refundable and invoice.balance_minor <= 0:
                invoice.status = Invoice.Status.REFUNDED
            invoice.version += 1
            invoice.save(update_fields=["refunded_minor", "status", "version"])
            number = next_number("refund").text
            # The payment comes back off the invoice, and the claim it settled is released,
            # so the invoice owes nothing more; credit keeps the money if it stays with us.
            postings += [
                Posting(client.pk, LedgerEntry.Account.RECEIVABLE, LedgerEntry.Kind.REFUND,
                        amount, invoice.pk, number),
                Posting(client.pk, LedgerEntry.Account.RECEIVABLE,
                        LedgerEntry.Kind.REFUND_RELEASE, -amount, invoice.pk, number),
            ]  # fmt: skip
            if destination == Refund.Destination.CREDIT:
                postings.append(
                    Posting(client.pk, LedgerEntry.Account.CREDIT, LedgerEntry.Kind.REFUND,
                            -amount, None, number)
                )  # fmt: skip
        else:
            held = credit_held(history_ids(client), amount.currency)
            if amount > held:
                raise ServiceError(
                    _("The client has only %(held)s of credit.") % {"held": held}, field="amount"
                )
            number = next_number("refund").text
            postings.append(
                Posting(client.pk, LedgerEntry.Account.CREDIT, LedgerEntry.Kind.REFUND,
                        amount, None, number)
            )  # fmt: skip
        refund = Refund.objects.create(
            number=number,
            client=client,
            invoice=invoice,
            destination=destination,
            method=method if destination == Refund.Destination.OUT else "",
            amount_minor=amount.minor,
            currency=amount.currency,
            reason=reason[:500],
            created_by=by if getattr(by, "pk", None) else None,
        )
        record_event(
            "refund.recorded",
            by=by,
            client=client,
            subject=refund,
            amount=amount,
            reference=number,
            details={"destination": destination, "invoice": invoice.number if invoice else ""},
        )
        ledger_post(postings, by=by, owner_of=client)
    return refund


def credit_note_create(
    *, by, invoice: Invoice, amount: Money, reason: str, kind: str = CreditNote.Kind.CREDIT_NOTE
) -> CreditNote:
    """Reduce an issued invoice; a credit note beyond what is owed becomes credit balance.

    A write-off only forgives what is still owed.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Give a reason."), field="reason")
    if kind not in CreditNote.Kind.values:
        raise ServiceError(_("Choose a credit note or a write-off."), field="kind")
    _money(amount, invoice.currency)
    with transaction.atomic():
        client = _locked_client(invoice.client)
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.is_draft or invoice.status == Invoice.Status.CANCELLED:
            raise ConflictError(_("Only issued invoices can be credited."), field="status")
        creditable = invoice.total_minor - invoice.credited_minor - invoice.refunded_minor
        # What was paid on a top-up is already credit, so only what is owed can be credited.
        forgives_only_owed = kind == CreditNote.Kind.WRITE_OFF or invoice.credit_top_up
        limit = invoice.balance_minor if forgives_only_owed else creditable
        if amount.minor > limit:
            raise ServiceError(
                _("At most %(limit)s can be credited on this invoice.")
                % {"limit": invoice.money(max(limit, 0))},
                field="amount",
            )
        number = next_number("credit_note").text
        note = CreditNote.objects.create(
            number=number,
            kind=kind,
            client=client,
            invoice=invoice,
            amount_minor=amount.minor,
            currency=amount.currency,
            reason=reason[:500],
            created_by=by if getattr(by, "pk", None) else None,
        )
        on_invoice = min(amount.minor, max(invoice.balance_minor, 0))
        to_credit = amount.minor - on_invoice
        entry_kind = (
            LedgerEntry.Kind.WRITE_OFF if kind == CreditNote.Kind.WRITE_OFF
            else LedgerEntry.Kind.CREDIT_NOTE
        )  # fmt: skip
        postings = [
            Posting(client.pk, LedgerEntry.Account.RECEIVABLE, entry_kind,
                    Money(-on_invoice, amount.currency), invoice.pk, number),
            Posting(client.pk, LedgerEntry.Account.CREDIT, entry_kind,
                    Money(-to_credit, amount.currency), None, number),
        ]  # fmt: skip
        invoice.credited_minor += amount.minor
        invoice.balance_minor -= on_invoice
        if invoice.balance_minor <= 0 and invoice.paid_minor == 0:
            # Nothing was paid: settled wholly by credit, the invoice is void, with no receipt.
            invoice.status = Invoice.Status.CANCELLED
            invoice.version += 1
            invoice.save(update_fields=["status", "balance_minor", "credited_minor", "version"])
        else:
            invoice.save(update_fields=_settle_status(invoice))
        record_event(
            "credit_note.created",
            by=by,
            client=client,
            subject=note,
            amount=amount,
            reference=number,
            details={"kind": str(CreditNote.Kind(kind).label), "invoice": invoice.number},
        )
        _after_settling(client, by)
        ledger_post(postings, by=by, owner_of=client)
    return note


def credit_adjust(*, by, client: Client, amount: Money, reason: str) -> Money:
    """Add to (positive) or take from (negative) a client's credit balance, with a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Give a reason for the adjustment."), field="reason")
    check_currency(amount.currency)
    if not amount:
        raise ServiceError(_("The adjustment cannot be zero."), field="amount")
    with transaction.atomic():
        client = _locked_client(_live_client(client))
        held = credit_held(history_ids(client), amount.currency)
        if (held + amount).minor < 0:
            raise ServiceError(
                _("The client has only %(held)s of credit.") % {"held": held}, field="amount"
            )
        record_event(
            "credit.adjusted",
            by=by,
            client=client,
            subject=client,
            amount=amount,
            reference=client.number,
            details={"reason": reason},
        )
        ledger_post(
            [Posting(client.pk, LedgerEntry.Account.CREDIT, LedgerEntry.Kind.ADJUSTMENT,
                     -amount, None, client.number)],
            by=by,
            owner_of=client,
        )  # fmt: skip
    return held + amount


# ----------------------------------------------------------------------------- orders


@dataclass
class ItemSpec:
    """One product to order."""

    product: Product
    cycle: str
    quantity: int = 1
    options: dict = field(default_factory=dict)
    price_override: Money | None = None


def _duplicate_check(client: Client, product_ids: list[int]) -> None:
    if len(set(product_ids)) != len(product_ids):
        raise ServiceError(_("A product appears twice in the order."), field="items")
    existing = (
        Service.objects.filter(client=client, product_id__in=product_ids, status__in=Service.LIVE)
        .select_related("product")
        .first()
    )
    if existing is not None:
        raise ConflictError(
            _("%(client)s already has %(product)s (service #%(id)s): change that service with "
              "an upgrade instead of ordering it again.")
            % {"client": client.name, "product": existing.product.name, "id": existing.pk},
            field="items",
        )  # fmt: skip


def order_create(
    *,
    by,
    client: Client,
    items: list[ItemSpec],
    payment_method: str | None = None,
    promo_code: str = "",
    send_email: bool = True,
    note: str = "",
) -> Order:
    """A pending order for a client, priced now from the catalogue."""
    _live_client(client)
    if client.status == Client.Status.CLOSED:
        raise ServiceError(_("The account is closed."), field="client")
    if not items:
        raise ServiceError(_("Add at least one product."), field="items")
    method = payment_method or client.payment_method
    if method not in PaymentMethod.values:
        raise ServiceError(_("Choose how the client will pay."), field="payment_method")
    for item in items:
        if not item.product.active:
            raise ServiceError(
                _("%(product)s is not on sale.") % {"product": item.product.name}, field="items"
            )
        product_quote(item.product, cycle=item.cycle, currency=client.currency,
                      quantity=item.quantity, options=item.options)  # fmt: skip
        if item.price_override is not None:
            _money(item.price_override, client.currency, "price_override", positive=False)
            if item.price_override.minor < 0:
                raise ServiceError(_("A price cannot be negative."), field="price_override")
    _duplicate_check(client, [item.product.pk for item in items])
    promo = None
    if promo_code.strip():
        promo = promo_check(
            promo_code,
            product_ids=[item.product.pk for item in items],
            currency=client.currency,
            today=clock.today(),
        )
    with transaction.atomic():
        order = Order.objects.create(
            number=next_number("order").text,
            client=client,
            currency=client.currency,
            payment_method=method,
            promo=promo,
            send_email=send_email,
            note=note.strip(),
            created_by=by if getattr(by, "pk", None) else None,
        )
        OrderItem.objects.bulk_create(
            [
                OrderItem(
                    order=order,
                    product=item.product,
                    cycle=item.cycle,
                    quantity=item.quantity,
                    options=dict(item.options),
                    price_override_minor=(
                        item.price_override.minor if item.price_override is not None else None
                    ),
                )
                for item in items
            ]
        )
        audit_create(order, by=by)
        record_event("order.created", by=by, client=client, subject=order, reference=order.number)
    return order


def _lock_promo_use(promo: PromoCode) -> PromoCode:
    promo = PromoCode.objects.select_for_update().get(pk=promo.pk)
    if promo.max_uses is not None and promo.uses >= promo.max_uses:
        raise ConflictError(
            _("Promo code %(code)s has been used up.") % {"code": promo.code}, field="promo_code"
        )
    promo.uses = F("uses") + 1
    promo.save(update_fields=["uses"])
    promo.refresh_from_db(fields=["uses"])
    return promo


def service_lines(
    service: Service,
    quote: Quote,
    start: dt.date,
    end: dt.date | None,
    *,
    first: bool,
    override_minor: int | None = None,
) -> list[LineSpec]:
    """The invoice lines of one period of a service: product, options, setup fee, promo."""
    product, currency = service.product, service.currency
    period = f" ({start:%d/%m/%Y} – {end:%d/%m/%Y})" if end else ""
    common = {"taxable": product.taxable, "tax_inclusive": product.tax_inclusive,
              "period_start": start, "period_end": end, "service": service}  # fmt: skip
    if override_minor is not None:
        lines = [LineSpec(f"{product.name}{period}", Money(override_minor, currency).amount,
                          Decimal(1), **common)]  # fmt: skip
    else:
        lines = [LineSpec(f"{product.name}{period}", quote.base.amount,
                          Decimal(quote.quantity), **common)]  # fmt: skip
        for charge in quote.options:
            if charge.charged_units:
                lines.append(
                    LineSpec(f"{charge.option.name}: {charge.units} × {charge.unit_price}",
                             charge.unit_price.amount, Decimal(charge.charged_units), **common)
                )  # fmt: skip
    if first and quote.setup_fee:
        lines.append(LineSpec(_("%(product)s: setup fee") % {"product": product.name},
                              quote.setup_fee.amount, Decimal(1), **common))  # fmt: skip
    promo = service.promo
    if promo is not None and (first or promo.recurring) and promo_applies_to(promo, product):
        lines.extend(_promo_lines(promo, lines, currency, common))
    return lines


def _promo_lines(promo: PromoCode, lines: list[LineSpec], currency: str, common: dict):
    base = sum(
        (Money.from_decimal(spec.unit_price * spec.quantity, currency) for spec in lines),
        Money.zero(currency),
    )
    if promo.kind == PromoCode.Kind.PERCENT:
        discount = Money(round_half_up(Decimal(base.minor) * promo.percent / 100), currency)
        label = _("Promo code %(code)s: %(percent)s %%") % {
            "code": promo.code, "percent": f"{promo.percent.normalize():f}"
        }  # fmt: skip
    else:
        discount = Money(min(promo.amount_minor, base.minor), currency)
        label = _("Promo code %(code)s") % {"code": promo.code}
    if not discount:
        return []
    return [LineSpec(label, -discount.amount, Decimal(1), **common)]


def order_accept(*, by, order: Order) -> Order:
    """Create the order's services, active from today, and the draft invoice of their first
    period (a draft per service when the client wants separate invoices)."""
    today = clock.today()
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("client").get(pk=order.pk)
        if order.status != Order.Status.PENDING:
            raise ConflictError(
                _("The order is %(status)s.") % {"status": Order.Status(order.status).label},
                field="status",
            )
        client = _live_client(order.client)
        if client.status == Client.Status.CLOSED:
            # Closing cancelled the account's services; a pending order must not revive them.
            raise ServiceError(_("The account is closed."), field="client")
        if client.status == Client.Status.INACTIVE:
            # Its services are suspended; new active ones would slip past the suspension.
            raise ServiceError(
                _("The account is inactive: reactivate it before accepting the order."),
                field="client",
            )
        items = list(order.items.select_related("product"))
        _duplicate_check(client, [item.product_id for item in items])
        promo = _lock_promo_use(order.promo) if order.promo_id else None
        per_service: list[list[LineSpec]] = []
        for item in items:
            quote = product_quote(item.product, cycle=item.cycle, currency=order.currency,
                                  quantity=item.quantity, options=item.options)  # fmt: skip
            recurring = (
                item.price_override_minor
                if item.price_override_minor is not None
                else quote.recurring.minor
            )
            due, first_price = next_due(today, item.cycle), item.price_override_minor
            if client.billing_day and due:
                # Co-terming: a short first period, prorated by days, ends on the billing day.
                due = aligned_due(today, item.cycle, client.billing_day)
                cycle_days = (next_due(today, item.cycle) - today).days
                if (due - today).days != cycle_days:
                    first_price = prorate(
                        Money(recurring, order.currency), (due - today).days, cycle_days
                    ).minor
            try:
                with transaction.atomic():
                    service = Service.objects.create(
                        client=client,
                        product=item.product,
                        order=order,
                        cycle=item.cycle,
                        quantity=item.quantity,
                        options={c.option.code: c.units for c in quote.options},
                        currency=order.currency,
                        recurring_minor=recurring,
                        price_overridden=item.price_override_minor is not None,
                        promo=promo if promo and promo_applies_to(promo, item.product) else None,
                        status=Service.Status.ACTIVE,
                        registered_on=today,
                        period_start=today,
                        next_due_on=due,
                    )
            except IntegrityError:
                _duplicate_check(client, [item.product_id])
                raise
            audit_create(service, by=by)
            end = due - dt.timedelta(days=1) if due else None
            specs = service_lines(
                service, quote, today, end, first=True, override_minor=first_price
            )
            per_service.append(specs)
        # One draft for the order, or one per service for a client who asked for that.
        batches = per_service if client.separate_invoices else [[*chain(*per_service)]]
        drafts = []
        for specs in batches:
            invoice = _draft_for(client, by=by, issued_on=today, order=order)
            _add_lines(invoice, [_clean_line(spec) for spec in specs])
            audit_create(invoice, by=by)
            drafts.append(invoice)
            # The first periods count as billed, so the billing run never bills them again.
            first_periods = {
                spec.service.pk: BilledPeriod(service=spec.service, invoice=invoice,
                                              period_start=spec.period_start,
                                              period_end=spec.period_end)
                for spec in specs
                if spec.period_end
            }  # fmt: skip
            BilledPeriod.objects.bulk_create(first_periods.values())
        check_limit(client, Money(sum(d.total_minor for d in drafts), order.currency))
        order.status, order.decided_at = Order.Status.ACCEPTED, clock.now()
        order.invoice = drafts[0]
        order.save(update_fields=["status", "decided_at", "invoice"])
        record_event("order.accepted", by=by, client=client, subject=order, reference=order.number)
    return order


def order_cancel(*, by, order: Order, reason: str, fraud: bool = False) -> Order:
    """Cancel a pending order (or mark it fraud); nothing was created from it."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Give a reason for the cancellation."), field="reason")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status != Order.Status.PENDING:
            raise ConflictError(
                _("The order is %(status)s.") % {"status": Order.Status(order.status).label},
                field="status",
            )
        order.status = Order.Status.FRAUD if fraud else Order.Status.CANCELLED
        order.decided_at, order.cancel_reason = clock.now(), reason[:500]
        order.save(update_fields=["status", "decided_at", "cancel_reason"])
        record_event(
            "order.cancelled",
            by=by,
            client=order.client,
            subject=order,
            reference=order.number,
            details={"reason": reason},
        )
    return order


# ----------------------------------------------------------------------------- services

# Which statuses each named action moves a service from, and to.
_TRANSITIONS = {
    "activate": (("pending",), Service.Status.ACTIVE),
    "suspend": (("active",), Service.Status.SUSPENDED),
    "unsuspend": (("suspended",), Service.Status.ACTIVE),
    "terminate": (("pending", "active", "suspended"), Service.Status.TERMINATED),
    "cancel": (("pending", "active", "suspended"), Service.Status.CANCELLED),
}


_ACTION_NAMES = {
    "activate": gettext_lazy("activating"),
    "suspend": gettext_lazy("suspending"),
    "unsuspend": gettext_lazy("unsuspending"),
    "terminate": gettext_lazy("terminating"),
    "cancel": gettext_lazy("cancelling"),
}


def service_action(*, by, service: Service, action: str, reason: str) -> Service:
    """Move a service through its lifecycle by a named action, with a reason."""
    if action not in _TRANSITIONS:
        raise ServiceError(_("Unknown action."), field="action")
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Give a reason."), field="reason")
    with transaction.atomic():
        service = (
            Service.objects.select_for_update(of=("self",))
            .select_related("product")
            .get(pk=service.pk)
        )
        _transition(service, action, reason, by)
    return service


def service_action_schedule(*, by, service: Service, action: str, reason: str, due_on: dt.date):
    """Schedule a lifecycle action for a later day; the daily automation takes it then."""
    from clientbase.clients.models import DeferredAction

    if action not in _TRANSITIONS:
        raise ServiceError(_("Unknown action."), field="action")
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Give a reason."), field="reason")
    if due_on <= clock.today():
        raise ServiceError(_("Choose a day after today, or act now."), field="due_on")
    with transaction.atomic():
        service = (
            Service.objects.select_for_update(of=("self",))
            .select_related("product", "client")
            .get(pk=service.pk)
        )
        if service.status not in _TRANSITIONS[action][0]:
            raise ConflictError(
                _("The service is %(status)s: %(action)s is not possible.")
                % {"status": Service.Status(service.status).label,
                   "action": _ACTION_NAMES[action]},
                field="status",
            )  # fmt: skip
        scheduled = DeferredAction.objects.create(
            client=service.client,
            kind=DeferredAction.Kind.SERVICE,
            params={
                "service_id": service.pk,
                "product": service.product.name,
                "action": action,
                "status": str(_TRANSITIONS[action][1]),
                "reason": reason[:500],
            },
            due_on=due_on,
            created_by=by,
        )
        audit_create(scheduled, by=by)
    return scheduled


def describe_scheduled_service_action(action) -> str:
    """ "Disk 5 GB: terminate", in the reader's language."""
    verbs = {"activate": gettext_lazy("activate"), "suspend": gettext_lazy("suspend"),
             "unsuspend": gettext_lazy("unsuspend"), "terminate": gettext_lazy("terminate"),
             "cancel": gettext_lazy("cancel")}  # fmt: skip
    params = action.params
    return f"{params.get('product', '')}: {verbs.get(params.get('action'), params.get('action'))}"


def run_scheduled_service_action(action, by) -> None:
    """The daily automation's side of a scheduled service change."""
    params = action.params
    service = Service.objects.filter(pk=params["service_id"]).first()
    if service is None:
        raise ServiceError(_("The service no longer exists."), field="service")
    service_action(by=by, service=service, action=params["action"], reason=params["reason"])


def _transition(
    service: Service, action: str, reason: str, by, *, with_account=False, for_debt=False
) -> None:
    sources, target = _TRANSITIONS[action]
    if service.status not in sources:
        raise ConflictError(
            _("The service is %(status)s: %(action)s is not possible.")
            % {"status": Service.Status(service.status).label, "action": _ACTION_NAMES[action]},
            field="status",
        )
    old = service.status
    service.status, service.status_reason = target, reason[:500]
    service.suspended_with_account = with_account and target == Service.Status.SUSPENDED
    service.suspended_for_debt = for_debt and target == Service.Status.SUSPENDED
    service.save(
        update_fields=["status", "status_reason", "suspended_with_account", "suspended_for_debt"]
    )
    record_event(
        "service.status",
        by=by,
        client=service.client,
        subject=service,
        reference=str(service.pk),
        details={"product": service.product.name, "old": old, "new": target, "reason": reason},
    )


def service_cancel_at_period_end(*, by, service: Service, reason: str, cancel: bool = True):
    """Ask for (or withdraw) cancellation when the paid period ends."""
    reason = (reason or "").strip()
    if cancel and not reason:
        raise ServiceError(_("Give a reason."), field="reason")
    with transaction.atomic():
        service = (
            Service.objects.select_for_update(of=("self",))
            .select_related("product")
            .get(pk=service.pk)
        )
        if service.status not in Service.LIVE:
            raise ConflictError(_("The service has ended."), field="status")
        before = snapshot(service)
        service.cancel_at_period_end = cancel
        service.status_reason = reason[:500] if cancel else ""
        service.save(update_fields=["cancel_at_period_end", "status_reason"])
        audit_update(service, before, by=by)
    return service


def service_update(
    *, by, service: Service, next_due_on: dt.date | None, suspend_exempt_until: dt.date | None
) -> Service:
    """Change the next due date and the auto-suspension exemption."""
    with transaction.atomic():
        service = (
            Service.objects.select_for_update(of=("self",))
            .select_related("product")
            .get(pk=service.pk)
        )
        if next_due_on and service.period_start and next_due_on <= service.period_start:
            raise ServiceError(
                _("The next due date must come after the period start."), field="next_due_on"
            )
        before = snapshot(service)
        service.next_due_on, service.suspend_exempt_until = next_due_on, suspend_exempt_until
        service.save(update_fields=["next_due_on", "suspend_exempt_until"])
        if audit_update(service, before, by=by):
            record_event(
                "service.updated",
                by=by,
                client=service.client,
                subject=service,
                reference=str(service.pk),
                details={"product": service.product.name},
            )
    return service


def service_transfer(*, by, service: Service, to_client: Client, reason: str) -> Service:
    """Move a service to another client in the same currency; its invoices stay where they are."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Give a reason."), field="reason")
    _live_client(to_client)
    with transaction.atomic():
        service = (
            Service.objects.select_for_update(of=("self",))
            .select_related("product", "client")
            .get(pk=service.pk)
        )
        if to_client.pk == service.client_id:
            raise ServiceError(_("The service already belongs to this client."), field="to_client")
        if to_client.currency != service.currency:
            raise ServiceError(
                _("%(client)s is billed in %(currency)s, the service in %(service)s.")
                % {"client": to_client.name, "currency": to_client.currency,
                   "service": service.currency},
                field="to_client",
            )  # fmt: skip
        if service.status in Service.LIVE:
            _duplicate_check(to_client, [service.product_id])
        source = service.client
        service.client = to_client
        service.save(update_fields=["client"])
        for client in (source, to_client):
            record_event(
                "service.transferred",
                by=by,
                client=client,
                subject=service,
                reference=str(service.pk),
                details={"product": service.product.name, "to": to_client.number,
                         "from": source.number, "reason": reason},
            )  # fmt: skip
    return service


@dataclass(frozen=True)
class ChangePreview:
    """What changing a service costs: the days left, old and new prices, and the difference."""

    product: Product
    cycle: str
    quantity: int
    options: dict
    days_left: int
    cycle_days: int
    old_recurring: Money
    new_recurring: Money
    charge: Money  # positive: an invoice; negative: credit for a downgrade
    new_period_start: dt.date
    new_next_due: dt.date | None
    quote: Quote
    total: Money | None = None  # the charge with the recurring promo and tax, as posted


def service_change_preview(
    *,
    service: Service,
    product: Product | None = None,
    cycle: str | None = None,
    quantity: int | None = None,
    options: dict | None = None,
    today: dt.date | None = None,
) -> ChangePreview:
    """Price an upgrade or downgrade by the days left in the current cycle."""
    preview = _change_price(service, product, cycle, quantity, options, today or clock.today())
    return replace(preview, total=_change_total(service, preview.product, preview.charge))


def _change_price(service, product, cycle, quantity, options, today) -> ChangePreview:
    """The change's prices and its charge before promo and tax."""
    if service.status not in ("active", "suspended"):
        raise ConflictError(_("Only active or suspended services can be changed."), field="status")
    product = product or service.product
    cycle = cycle or service.cycle
    quantity = quantity if quantity is not None else service.quantity
    merged_options = (
        {**service.options, **(options or {})} if product == service.product else (options or {})
    )
    if product != service.product:
        _duplicate_check(service.client, [product.pk])
    quote = product_quote(product, cycle=cycle, currency=service.currency, quantity=quantity,
                          options=merged_options)  # fmt: skip
    new = quote.recurring
    old = service.recurring
    if (product, cycle, quantity, {c.option.code: c.units for c in quote.options}) == (
        service.product,
        service.cycle,
        service.quantity,
        service.options,
    ):
        raise ServiceError(_("Nothing would change."), field="options")
    start, due = service.period_start or today, service.next_due_on
    if due is None or cycle not in CYCLE_MONTHS or service.cycle not in CYCLE_MONTHS:
        # One-time and free services have no cycle to share: the new price is charged whole.
        return ChangePreview(product, cycle, quantity, merged_options, 0, 0, old, new,
                             new - old if new > old else Money.zero(old.currency), today,
                             next_due(today, cycle), quote)  # fmt: skip
    cycle_days = (due - start).days
    days_left = min(max((due - today).days, 0), cycle_days)
    if cycle == service.cycle:
        charge = (
            prorate(new - old, days_left, cycle_days)
            if new >= old
            else -prorate(old - new, days_left, cycle_days)
        )
        return ChangePreview(product, cycle, quantity, merged_options, days_left, cycle_days,
                             old, new, charge, start, due, quote)  # fmt: skip
    # A new cycle starts today at the full new price, less what is unused of the old one.
    unused = prorate(old, days_left, cycle_days)
    return ChangePreview(product, cycle, quantity, merged_options, days_left, cycle_days, old,
                         new, new - unused, today, next_due(today, cycle), quote)  # fmt: skip


def service_change(
    *,
    by,
    service: Service,
    product: Product | None = None,
    cycle: str | None = None,
    quantity: int | None = None,
    options: dict | None = None,
) -> tuple[Service, Invoice | None, ChangePreview]:
    """Apply an upgrade or downgrade: an issued invoice for the charge, or credit for a refund."""
    today = clock.today()
    with transaction.atomic():
        client = _locked_client(service.client)
        service = (
            Service.objects.select_for_update(of=("self",))
            .select_related("product", "promo")
            .get(pk=service.pk)
        )
        preview = service_change_preview(
            service=service, product=product, cycle=cycle, quantity=quantity, options=options,
            today=today,
        )  # fmt: skip
        before = snapshot(service)
        old_label = _service_label(service)
        service.product, service.cycle, service.quantity = (
            preview.product,
            preview.cycle,
            preview.quantity,
        )
        service.options = {c.option.code: c.units for c in preview.quote.options}
        service.recurring_minor = preview.new_recurring.minor
        service.period_start, service.next_due_on = preview.new_period_start, preview.new_next_due
        service.save()
        audit_update(service, before, by=by)
        change = f"{old_label} → {_service_label(service)}"
        record_event(
            "service.changed",
            by=by,
            client=client,
            subject=service,
            amount=preview.charge,
            reference=str(service.pk),
            details={"product": service.product.name, "change": change},
        )
        invoice = None
        if preview.charge.minor > 0:
            invoice = _draft_for(client, by=by, issued_on=today)
            end = preview.new_next_due - dt.timedelta(days=1) if preview.new_next_due else None
            period = f" ({today:%d/%m/%Y} – {end:%d/%m/%Y})" if end else ""
            common = {"taxable": service.product.taxable,
                      "tax_inclusive": service.product.tax_inclusive, "period_start": today,
                      "period_end": end, "service": service}  # fmt: skip
            label = _("Change: %(change)s, %(days)s of %(cycle)s days") % {
                "change": change, "days": preview.days_left, "cycle": preview.cycle_days
            }  # fmt: skip
            specs = [LineSpec(f"{label}{period}", preview.charge.amount, Decimal(1), **common)]
            if (
                service.promo
                and service.promo.recurring
                and promo_applies_to(service.promo, service.product)
            ):
                specs += _promo_lines(service.promo, specs, service.currency, common)
            _add_lines(invoice, [_clean_line(s) for s in specs])
            audit_create(invoice, by=by)
        elif preview.charge.minor < 0:
            ledger_post(
                [Posting(client.pk, LedgerEntry.Account.CREDIT, LedgerEntry.Kind.PRORATION_CREDIT,
                         preview.total, None, str(service.pk))],
                by=by,
                owner_of=client,
            )  # fmt: skip
    if invoice is not None:
        invoice = invoice_issue(by=by, invoice=invoice)
    return service, invoice, preview


def _change_total(service: Service, product: Product, charge: Money) -> Money:
    """The charge as an invoice of it would total, with the service's recurring promo and the
    client's tax; signed as the charge, so a downgrade's credit is what the days were paid."""
    currency = service.currency
    if not charge:
        return charge
    common = {"taxable": product.taxable, "tax_inclusive": product.tax_inclusive}
    specs = [LineSpec("", abs(charge.amount), Decimal(1), **common)]
    if service.promo and service.promo.recurring and promo_applies_to(service.promo, product):
        specs += _promo_lines(service.promo, specs, currency, common)
    rate = _client_tax(service.client)
    total = 0
    for spec in specs:
        amounts = line_amounts(
            quantity=spec.quantity, unit_price=spec.unit_price, discount_percent=Decimal(0),
            tax_rate=rate, taxable=spec.taxable, tax_inclusive=spec.tax_inclusive,
            currency=currency,
        )  # fmt: skip
        total += amounts.net_minor + amounts.tax_minor
    return Money(total if charge.minor > 0 else -total, currency)


def _service_label(service: Service) -> str:
    units = ", ".join(f"{code} {units}" for code, units in sorted(service.options.items()))
    parts = [service.product.name, str(Cycle(service.cycle).label)]
    if service.quantity != 1:
        parts.append(f"× {service.quantity}")
    if units:
        parts.append(units)
    return " ".join(parts)


# ----------------------------------------------------------------------------- account hooks


def services_reprice_at_renewal(product: Product, currency: str, cycle: str) -> int:
    """Mark the live services of a price to renew at the catalogue's price of the day."""
    return Service.objects.filter(
        product=product,
        currency=currency,
        cycle=cycle,
        status__in=Service.LIVE,
        price_overridden=False,
    ).update(reprice_at_renewal=True)


def services_follow_account(client: Client, old: str, new: str, by) -> None:
    """Inactivating suspends active services; reactivating restores exactly those; closing
    cancels every live service."""
    live = (
        Service.objects.select_for_update(of=("self",))
        .select_related("product")
        .filter(client=client, status__in=Service.LIVE)
    )
    reason = _("Account %(number)s is %(status)s") % {
        "number": client.number, "status": Client.Status(new).label
    }  # fmt: skip
    for service in live.order_by("pk"):
        if new == Client.Status.INACTIVE and service.status == Service.Status.ACTIVE:
            _transition(service, "suspend", reason, by, with_account=True)
        elif (
            new == Client.Status.ACTIVE
            and service.status == Service.Status.SUSPENDED
            and service.suspended_with_account
        ):
            _transition(service, "unsuspend", reason, by)
        elif new == Client.Status.CLOSED:
            _transition(service, "cancel", reason, by)


def billing_blocks_delete(client: Client) -> str:
    """A client with live services, money owed or credit held is closed, not deleted."""
    if Service.objects.filter(client=client, status__in=Service.LIVE).exists():
        return _("The client has live services.")
    if Invoice.objects.filter(client=client, status__in=Invoice.OPEN).exists():
        return _("The client has unpaid invoices.")
    if LedgerEntry.objects.filter(client=client).exists():
        return _("The client has billing history; close the account instead.")
    return ""
