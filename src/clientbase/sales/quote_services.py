"""Every write to quotes and contracts: lines, stages, approval, sending, conversion, renewal.

Rules chosen here (SAL-4, SAL-5):
- A quote's lines change only while it is a draft, in negotiation or on hold.
- Approval is required before a quote is sent when any line's discount is above
  `settings.QUOTE_APPROVAL_DISCOUNT` percent (10 by default). Changing the lines of an
  approved quote takes the approval back, so what goes out is what was approved.
- Only an accepted quote converts (a converted one may convert to the other kind too);
  the quote is "converted" as soon as either an invoice or a contract is made from it.
- A renewal is a new active contract that starts the day after the old one ends and runs
  as long; the old one becomes "renewed".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clientbase.accounts.models import User
from clientbase.billing.calc import add_months, line_amounts
from clientbase.billing.services import LineSpec, _clean_line, _client_tax, invoice_create
from clientbase.catalog.models import Cycle, Price, Product
from clientbase.catalog.pricing import product_quote, tax_rate_for
from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.audit import audit_create, audit_update, snapshot
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.events import record_event, register_event_type
from clientbase.core.models import EventCategory
from clientbase.core.money import Money
from clientbase.core.numbering import next_number, register_series
from clientbase.sales.activity_services import activity_create
from clientbase.sales.models import (
    Activity,
    Contract,
    ContractLine,
    ContractTemplate,
    Deal,
    Lead,
    Quote,
    QuoteLine,
)

register_series("quote", prefix="Q-", padding=5)
register_series("contract", prefix="C-", padding=5)

for code, message in [
    ("quote.created", gettext_lazy("Quote %(reference)s made")),
    ("quote.sent", gettext_lazy("Quote %(reference)s sent to %(to)s")),
    ("quote.converted", gettext_lazy("Quote %(reference)s converted to %(target)s")),
    ("contract.created", gettext_lazy("Contract %(reference)s drawn up")),
    ("contract.signed", gettext_lazy("Contract %(reference)s signed")),
    ("contract.terminated", gettext_lazy("Contract %(reference)s terminated")),
    ("contract.renewed", gettext_lazy("Contract %(reference)s renewed as %(renewal)s")),
]:
    register_event_type(code, EventCategory.SALES, message)

DEFAULT_VALIDITY_DAYS = 30
EDITABLE = (Quote.Stage.DRAFT, Quote.Stage.NEGOTIATION, Quote.Stage.ON_HOLD)
CONVERTIBLE = (Quote.Stage.ACCEPTED, Quote.Stage.CONVERTED)
# Where a quote may go from each stage by quote_set_stage; "converted" only by conversion.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    Quote.Stage.DRAFT: ("negotiation", "sent", "on_hold", "lost", "cancelled"),
    Quote.Stage.NEGOTIATION: ("draft", "sent", "on_hold", "lost", "cancelled"),
    Quote.Stage.SENT: ("negotiation", "on_hold", "accepted", "lost", "cancelled"),
    Quote.Stage.ON_HOLD: ("draft", "negotiation", "sent", "lost", "cancelled"),
    Quote.Stage.ACCEPTED: ("negotiation", "lost", "cancelled"),
    Quote.Stage.CONVERTED: (),
    Quote.Stage.LOST: ("draft",),
    Quote.Stage.CANCELLED: (),
}
CONTRACT_TRANSITIONS: dict[str, tuple[str, ...]] = {
    Contract.Status.DRAFT: ("active", "terminated"),
    Contract.Status.ACTIVE: ("terminated", "renewed", "expired"),
    Contract.Status.EXPIRED: ("renewed",),
    Contract.Status.RENEWED: (),
    Contract.Status.TERMINATED: (),
}


def approval_threshold() -> Decimal:
    """The line discount, in percent, above which a quote needs approval before sending."""
    return Decimal(str(settings.QUOTE_APPROVAL_DISCOUNT))


@dataclass
class QuoteLineSpec:
    """A line to put on a quote: from the catalogue (product) or free."""

    description: str
    unit_price: Decimal
    quantity: Decimal = Decimal(1)
    discount_percent: Decimal = Decimal(0)
    taxable: bool = True
    tax_rate: Decimal | None = None  # None: the client's (or lead's) rate
    product: Product | None = None


def catalogue_line(
    product: Product, currency: str, quantity: Decimal = Decimal(1)
) -> QuoteLineSpec:
    """A line for a product at its catalogue price in the quote's currency (one-time price
    first, else the shortest cycle), as catalog.pricing prices an order."""
    order = [c.value for c in Cycle if c != Cycle.FREE] + [Cycle.FREE]
    cycles = set(
        Price.objects.filter(product=product, currency=currency).values_list("cycle", flat=True)
    )
    cycle = next((c for c in order if c in cycles), None)
    if cycle is None:
        raise ServiceError(
            _("%(product)s has no price in %(currency)s.")
            % {"product": product.name, "currency": currency},
            field="product",
        )
    price = product_quote(product, cycle=cycle, currency=currency).recurring.amount
    label = (
        product.name
        if cycle in (Cycle.ONE_TIME, Cycle.FREE)
        else (f"{product.name} ({Cycle(cycle).label.lower()})")
    )
    return QuoteLineSpec(
        description=label,
        unit_price=price,
        quantity=quantity,
        taxable=product.taxable,
        product=product,
    )


# --- helpers --------------------------------------------------------------------------------


def _clean(spec: QuoteLineSpec) -> QuoteLineSpec:
    """Checked as an invoice line is, by the same function, so the rules cannot drift apart."""
    line = _clean_line(
        LineSpec(
            description=spec.description,
            unit_price=spec.unit_price,
            quantity=spec.quantity,
            discount_percent=spec.discount_percent,
            taxable=spec.taxable,
            tax_rate=spec.tax_rate,
        )
    )
    if line.unit_price < 0:
        raise ServiceError(_("A quoted price cannot be negative."), field="unit_price")
    return QuoteLineSpec(
        description=line.description[:500],
        unit_price=line.unit_price,
        quantity=line.quantity,
        discount_percent=line.discount_percent,
        taxable=bool(line.taxable),
        tax_rate=line.tax_rate,
        product=spec.product,
    )


def quote_tax_rate(quote: Quote) -> Decimal:
    """The tax rate lines take by default: the client's, as on its invoices, else the lead's."""
    if quote.client_id:
        return _client_tax(quote.client)
    lead = quote.lead
    return tax_rate_for(country=lead.country, region=lead.region) if lead else Decimal(0)


def _line(quote: Quote, spec: QuoteLineSpec, position: int, rate: Decimal) -> QuoteLine:
    tax_rate = rate if spec.tax_rate is None else spec.tax_rate
    amounts = line_amounts(
        quantity=spec.quantity,
        unit_price=spec.unit_price,
        discount_percent=spec.discount_percent,
        tax_rate=tax_rate,
        taxable=spec.taxable,
        tax_inclusive=False,
        currency=quote.currency,
    )
    return QuoteLine(
        quote=quote,
        position=position,
        product=spec.product,
        description=spec.description,
        quantity=spec.quantity,
        unit_price=spec.unit_price,
        discount_percent=spec.discount_percent,
        taxable=spec.taxable,
        tax_rate=tax_rate if spec.taxable else Decimal(0),
        net_minor=amounts.net_minor,
        tax_minor=amounts.tax_minor,
    )


def _recompute(quote: Quote) -> None:
    """Totals as sums of the rounded lines; an approved quote whose lines changed is not."""
    lines = list(quote.lines.all())
    quote.subtotal_minor = sum(line.net_minor for line in lines)
    quote.tax_minor = sum(line.tax_minor for line in lines)
    quote.total_minor = quote.subtotal_minor + quote.tax_minor
    if quote.approval == Quote.Approval.APPROVED:
        quote.approval = Quote.Approval.NOT_REQUESTED
        quote.approved_by = None
    quote.version += 1
    quote.save(
        update_fields=[
            "subtotal_minor",
            "tax_minor",
            "total_minor",
            "approval",
            "approved_by",
            "version",
        ]
    )


def needs_approval(quote: Quote) -> bool:
    """Whether a line's discount is above the threshold, so sending waits for approval."""
    threshold = approval_threshold()
    return any(line.discount_percent > threshold for line in quote.lines.all())


def _locked(quote: Quote) -> Quote:
    return Quote.objects.select_for_update().get(pk=quote.pk)


def _editable(quote: Quote) -> Quote:
    quote = _locked(quote)
    if quote.stage not in EDITABLE:
        raise ConflictError(
            _("Quote %(number)s is %(stage)s: its lines no longer change.")
            % {"number": quote.number, "stage": quote.get_stage_display().lower()},
            field="stage",
        )
    return quote


def _check_version(record, version: int | None) -> None:
    if version is not None and version != record.version:
        raise ConflictError(
            _("Somebody else changed %(number)s meanwhile; reload it and try again.")
            % {"number": record.number}
        )


def _event(code: str, record, by, **details) -> None:
    client = record.client if record.client_id else None
    record_event(
        code,
        by=by,
        client=client,
        subject=record,
        reference=record.number,
        amount=Money(record.total_minor if isinstance(record, Quote) else record.value_minor,
                     record.currency),
        details=details,
    )  # fmt: skip


def _dates(issued_on: dt.date, valid_until: dt.date) -> None:
    if valid_until < issued_on:
        raise ServiceError(
            _("A quote cannot expire before its date."), field="valid_until"
        )  # fmt: skip


# --- quotes ---------------------------------------------------------------------------------


def quote_create(
    *,
    by: User,
    client: Client | None = None,
    lead: Lead | None = None,
    deal: Deal | None = None,
    lines: list[QuoteLineSpec] = (),
    issued_on: dt.date | None = None,
    valid_until: dt.date | None = None,
    title: str = "",
    notes: str = "",
) -> Quote:
    """A draft quote for a client, a lead or a deal, in its currency, numbered at once."""
    if deal is not None:
        client = client or deal.client
        lead = lead or deal.lead
    if client is None and lead is not None and lead.client_id:
        client = lead.client
    if client is None and lead is None:
        raise ServiceError(_("Choose the client or lead the quote is for."), field="client")
    if client is not None and not client.is_live:
        raise ServiceError(_("This client was merged or deleted."), field="client")
    currency = (deal.currency if deal else "") or (client.currency if client else lead.currency)
    issued_on = issued_on or clock.today()
    valid_until = valid_until or issued_on + dt.timedelta(days=DEFAULT_VALIDITY_DAYS)
    _dates(issued_on, valid_until)
    specs = [_clean(spec) for spec in lines]
    holder = deal or lead or client
    with transaction.atomic():
        quote = Quote.objects.create(
            number=next_number("quote").text,
            title=" ".join((title or "").split())[:200],
            client=client,
            lead=lead,
            deal=deal,
            currency=currency,
            issued_on=issued_on,
            valid_until=valid_until,
            notes=(notes or "").strip(),
            owner=by,
            org_unit_id=holder.org_unit_id or by.org_unit_id,
        )
        if specs:
            rate = quote_tax_rate(quote)
            QuoteLine.objects.bulk_create([_line(quote, s, i, rate) for i, s in enumerate(specs)])
            _recompute(quote)
        audit_create(quote, by=by)
        _event("quote.created", quote, by)
    return quote


def quote_update(
    *,
    by: User,
    quote: Quote,
    title: str | None = None,
    issued_on: dt.date | None = None,
    valid_until: dt.date | None = None,
    notes: str | None = None,
    version: int | None = None,
) -> Quote:
    """Change a quote's title, dates or notes while it is editable."""
    with transaction.atomic():
        quote = _editable(quote)
        _check_version(quote, version)
        before = snapshot(quote)
        if title is not None:
            quote.title = " ".join(title.split())[:200]
        if notes is not None:
            quote.notes = notes.strip()
        quote.issued_on = issued_on or quote.issued_on
        quote.valid_until = valid_until or quote.valid_until
        _dates(quote.issued_on, quote.valid_until)
        quote.version += 1
        quote.save(update_fields=["title", "notes", "issued_on", "valid_until", "version"])
        audit_update(quote, before, by=by)
    return quote


def quote_line_add(*, by: User, quote: Quote, line: QuoteLineSpec) -> QuoteLine:
    """Add a line to an editable quote."""
    spec = _clean(line)
    with transaction.atomic():
        quote = _editable(quote)
        position = (quote.lines.order_by("-position").values_list("position", flat=True).first()
                    or 0) + 1  # fmt: skip
        added = _line(quote, spec, position, quote_tax_rate(quote))
        added.save()
        _recompute(quote)
    return added


def quote_line_update(*, by: User, line: QuoteLine, spec: QuoteLineSpec) -> QuoteLine:
    """Rewrite a line of an editable quote."""
    spec = _clean(spec)
    with transaction.atomic():
        quote = _editable(line.quote)
        fresh = _line(quote, spec, line.position, quote_tax_rate(quote))
        fresh.pk = line.pk
        fresh.save()
        _recompute(quote)
    return fresh


def quote_line_delete(*, by: User, line: QuoteLine) -> None:
    """Remove a line from an editable quote."""
    with transaction.atomic():
        quote = _editable(line.quote)
        line.delete()
        _recompute(quote)


def _check_may_send(quote: Quote) -> None:
    if not quote.lines.exists():
        raise ServiceError(_("Add at least one line before sending the quote."), field="stage")
    if needs_approval(quote) and quote.approval != Quote.Approval.APPROVED:
        raise ConflictError(
            _("A discount above %(limit)s %% needs approval before the quote is sent.")
            % {"limit": format(approval_threshold().normalize(), "f")},
            field="approval",
        )


def quote_set_stage(
    *, by: User, quote: Quote, stage: str, reason: str = "", version: int | None = None
) -> Quote:
    """Move a quote to another stage when its rules allow it (lost needs a reason)."""
    reason = " ".join((reason or "").split())[:200]
    with transaction.atomic():
        quote = _locked(quote)
        _check_version(quote, version)
        if stage not in TRANSITIONS.get(quote.stage, ()):
            label = dict(Quote.Stage.choices).get(stage, stage)
            raise ConflictError(
                _("A quote that is %(from)s cannot become %(to)s.")
                % {"from": quote.get_stage_display().lower(), "to": str(label).lower()},
                field="stage",
            )
        if stage == Quote.Stage.LOST and not reason:
            raise ServiceError(_("Say why the quote was lost."), field="reason")
        if stage == Quote.Stage.SENT:
            _check_may_send(quote)
            quote.sent_at = quote.sent_at or clock.now()
        before = snapshot(quote)
        quote.stage = stage
        quote.lost_reason = reason if stage == Quote.Stage.LOST else ""
        quote.version += 1
        quote.save(update_fields=["stage", "lost_reason", "sent_at", "version"])
        audit_update(quote, before, by=by)
    return quote


def quote_request_approval(*, by: User, quote: Quote, note: str = "") -> Quote:
    """Ask a manager to approve the quote (its discounts) before it goes out."""
    with transaction.atomic():
        quote = _editable(quote)
        if quote.approval in (Quote.Approval.REQUESTED, Quote.Approval.APPROVED):
            raise ConflictError(
                _("Approval of quote %(number)s is already %(state)s.")
                % {"number": quote.number, "state": quote.get_approval_display().lower()},
                field="approval",
            )
        if not quote.lines.exists():
            raise ServiceError(_("Add at least one line before asking for approval."))
        before = snapshot(quote)
        quote.approval = Quote.Approval.REQUESTED
        quote.approval_note = " ".join((note or "").split())[:500]
        quote.approved_by = None
        quote.version += 1
        quote.save(update_fields=["approval", "approval_note", "approved_by", "version"])
        audit_update(quote, before, by=by)
    return quote


def quote_decide(*, by: User, quote: Quote, approve: bool, note: str = "") -> Quote:
    """Approve or reject a requested quote (perm sales.approve); a rejection says why."""
    if not by.has_perm("sales.approve"):
        raise ServiceError(_("You may not approve quotes."), field="approval")
    note = " ".join((note or "").split())[:500]
    if not approve and not note:
        raise ServiceError(_("Say why the quote is rejected."), field="note")
    with transaction.atomic():
        quote = _locked(quote)
        if quote.approval != Quote.Approval.REQUESTED:
            raise ConflictError(
                _("Nobody asked for approval of quote %(number)s.") % {"number": quote.number},
                field="approval",
            )
        before = snapshot(quote)
        quote.approval = Quote.Approval.APPROVED if approve else Quote.Approval.REJECTED
        quote.approval_note = note
        quote.approved_by = by
        quote.version += 1
        quote.save(update_fields=["approval", "approval_note", "approved_by", "version"])
        audit_update(quote, before, by=by)
    return quote


def quote_recipient(quote: Quote) -> str:
    """Where the quote is mailed: the client's address, else the lead's."""
    if quote.client_id and quote.client.email:
        return quote.client.email
    return quote.lead.email if quote.lead_id else ""


def quote_send(*, by: User, quote: Quote, to: str = "") -> Quote:
    """Email the quote with its PDF once this commits; it becomes sent and a quote email is
    logged as an activity."""
    from clientbase.sales.quote_pdf import send_quote_mail
    from clientbase.support.services import clean_emails

    with transaction.atomic():
        quote = _locked(quote)
        if quote.stage not in (*EDITABLE, Quote.Stage.SENT):
            raise ConflictError(
                _("A quote that is %(stage)s is not sent any more.")
                % {"stage": quote.get_stage_display().lower()},
                field="stage",
            )
        _check_may_send(quote)
        address = (to or "").strip() or quote_recipient(quote)
        if not address:
            raise ServiceError(_("The client has no email address."), field="to")
        address = clean_emails([address], field="to")[0]
        before = snapshot(quote)
        quote.stage = Quote.Stage.SENT
        quote.sent_at = clock.now()
        quote.version += 1
        quote.save(update_fields=["stage", "sent_at", "version"])
        audit_update(quote, before, by=by)
        activity_create(
            by=by,
            kind=Activity.Kind.QUOTE_EMAIL,
            subject=_("Quote %(number)s sent") % {"number": quote.number},
            body=_("Sent to %(to)s.") % {"to": address},
            done=True,
            client=quote.client,
            lead=quote.lead,
            deal=quote.deal,
        )
        _event("quote.sent", quote, by, to=address)
        quote_id = quote.pk
        transaction.on_commit(lambda: send_quote_mail(quote_id, address))
    return quote


def _line_specs(quote: Quote) -> list[LineSpec]:
    return [
        LineSpec(
            description=line.description,
            unit_price=line.unit_price,
            quantity=line.quantity,
            discount_percent=line.discount_percent,
            taxable=line.taxable,
            tax_rate=line.tax_rate,
        )
        for line in quote.lines.all()
    ]


def quote_convert(*, by: User, quote: Quote, to: str) -> Quote:
    """Copy an accepted quote's lines into a draft invoice or a contract, linked both ways.

    Run twice, it finds the first result instead of copying again (the quote row is locked).
    """
    if to not in ("invoice", "contract"):
        raise ServiceError(_("Convert to an invoice or a contract."), field="to")
    with transaction.atomic():
        quote = _locked(quote)
        if (to == "invoice" and quote.invoice_id) or (to == "contract" and quote.contract_id):
            return quote
        if quote.stage not in CONVERTIBLE:
            raise ConflictError(
                _("Only an accepted quote converts; quote %(number)s is %(stage)s.")
                % {"number": quote.number, "stage": quote.get_stage_display().lower()},
                field="stage",
            )
        client = quote.client or (quote.lead.client if quote.lead_id else None)
        if client is None:
            raise ServiceError(
                _("The quote is for a lead: convert the lead to a client first."), field="client"
            )
        if client.currency != quote.currency:
            raise ServiceError(
                _("The client is billed in %(client)s; the quote is in %(quote)s.")
                % {"client": client.currency, "quote": quote.currency},
                field="client",
            )
        before = snapshot(quote)
        if to == "invoice":
            quote.invoice = invoice_create(
                by=by,
                client=client,
                lines=_line_specs(quote),
                notes=_("From quote %(number)s") % {"number": quote.number},
            )
        else:
            quote.contract = _contract_from_quote(by, quote, client)
        quote.client = client
        quote.stage = Quote.Stage.CONVERTED
        quote.version += 1
        quote.save(update_fields=["invoice", "contract", "client", "stage", "version"])
        audit_update(quote, before, by=by)
        target = quote.invoice if to == "invoice" else quote.contract
        _event("quote.converted", quote, by, target=f"{to} {target.number or target.pk}")
    return quote


def _contract_from_quote(by: User, quote: Quote, client: Client) -> Contract:
    template = ContractTemplate.objects.filter(is_default=True).first()
    contract = contract_create(
        by=by,
        client=client,
        title=quote.title or _("Contract from quote %(number)s") % {"number": quote.number},
        starts_on=clock.today(),
        # A year's term by default, so the contract comes up for renewal; editable after.
        ends_on=add_months(clock.today(), 12) - dt.timedelta(days=1),
        deal=quote.deal,
        template=template,
        value=Money(quote.total_minor, quote.currency),
        terms=quote.notes,
    )
    ContractLine.objects.bulk_create(
        ContractLine(
            contract=contract,
            position=line.position,
            product_id=line.product_id,
            description=line.description,
            quantity=line.quantity,
            unit_price=line.unit_price,
            discount_percent=line.discount_percent,
            taxable=line.taxable,
            tax_rate=line.tax_rate,
            net_minor=line.net_minor,
            tax_minor=line.tax_minor,
        )
        for line in quote.lines.all()
    )
    return contract


# --- contracts ------------------------------------------------------------------------------


def _contract_dates(starts_on: dt.date, ends_on: dt.date | None) -> None:
    if ends_on is not None and ends_on < starts_on:
        raise ServiceError(_("A contract cannot end before it starts."), field="ends_on")


def contract_create(
    *,
    by: User,
    client: Client,
    title: str,
    starts_on: dt.date,
    ends_on: dt.date | None = None,
    value: Money | None = None,
    deal: Deal | None = None,
    template: ContractTemplate | None = None,
    terms: str = "",
    owner: User | None = None,
) -> Contract:
    """A draft contract with a client, numbered at once, in the client's currency."""
    title = " ".join((title or "").split())[:200]
    if not title:
        raise ServiceError(_("Give the contract a title."), field="title")
    if not client.is_live:
        raise ServiceError(_("This client was merged or deleted."), field="client")
    _contract_dates(starts_on, ends_on)
    value = value or Money(0, client.currency)
    if value.currency != client.currency:
        raise ServiceError(
            _("The value must be in %(currency)s, the client's currency.")
            % {"currency": client.currency},
            field="value",
        )
    if value.minor < 0:
        raise ServiceError(_("The value cannot be negative."), field="value")
    with transaction.atomic():
        contract = Contract.objects.create(
            number=next_number("contract").text,
            title=title,
            client=client,
            deal=deal,
            template=template or ContractTemplate.objects.filter(is_default=True).first(),
            starts_on=starts_on,
            ends_on=ends_on,
            value_minor=value.minor,
            currency=value.currency,
            terms=(terms or "").strip(),
            owner=owner or by,
            org_unit_id=client.org_unit_id or by.org_unit_id,
        )
        audit_create(contract, by=by)
        _event("contract.created", contract, by)
    return contract


def _locked_contract(contract: Contract) -> Contract:
    return Contract.objects.select_for_update().get(pk=contract.pk)


def contract_update(
    *,
    by: User,
    contract: Contract,
    title: str | None = None,
    starts_on: dt.date | None = None,
    ends_on: dt.date | None = None,
    value: Money | None = None,
    template: ContractTemplate | None = None,
    terms: str | None = None,
    owner: User | None = None,
    version: int | None = None,
) -> Contract:
    """Change a draft or active contract; a closed one (renewed, expired, ended) stays."""
    with transaction.atomic():
        contract = _locked_contract(contract)
        _check_version(contract, version)
        if contract.status not in (Contract.Status.DRAFT, Contract.Status.ACTIVE):
            raise ConflictError(
                _("Contract %(number)s is %(status)s: it no longer changes.")
                % {"number": contract.number, "status": contract.get_status_display().lower()},
                field="status",
            )
        before = snapshot(contract)
        if title is not None:
            contract.title = " ".join(title.split())[:200]
            if not contract.title:
                raise ServiceError(_("Give the contract a title."), field="title")
        contract.starts_on = starts_on or contract.starts_on
        if ends_on is not None:
            contract.ends_on = ends_on
        _contract_dates(contract.starts_on, contract.ends_on)
        if value is not None:
            if value.currency != contract.currency or value.minor < 0:
                raise ServiceError(
                    _("The value must be an amount in %(currency)s.")
                    % {"currency": contract.currency},
                    field="value",
                )
            contract.value_minor = value.minor
        if template is not None:
            contract.template = template
        if terms is not None:
            contract.terms = terms.strip()
        if owner is not None:
            contract.owner = owner
        if contract.ends_on != before["ends_on"]:
            contract.reminded_for = None
        contract.version += 1
        contract.save(
            update_fields=[
                "title",
                "starts_on",
                "ends_on",
                "value_minor",
                "template",
                "terms",
                "owner",
                "reminded_for",
                "version",
            ]
        )
        audit_update(contract, before, by=by)
    return contract


def _set_status(by, contract: Contract, status: str) -> Contract:
    if status not in CONTRACT_TRANSITIONS.get(contract.status, ()):
        raise ConflictError(
            _("A contract that is %(from)s cannot become %(to)s.")
            % {
                "from": contract.get_status_display().lower(),
                "to": str(Contract.Status(status).label).lower(),
            },
            field="status",
        )
    before = snapshot(contract)
    contract.status = status
    contract.version += 1
    contract.save(update_fields=["status", "version"])
    audit_update(contract, before, by=by)
    return contract


def contract_activate(*, by: User, contract: Contract) -> Contract:
    """The contract is signed: it is in force from its start date."""
    with transaction.atomic():
        contract = _set_status(by, _locked_contract(contract), Contract.Status.ACTIVE)
        _event("contract.signed", contract, by)
    return contract


def contract_terminate(*, by: User, contract: Contract) -> Contract:
    """End a draft or active contract early."""
    with transaction.atomic():
        contract = _set_status(by, _locked_contract(contract), Contract.Status.TERMINATED)
        _event("contract.terminated", contract, by)
    return contract


def contract_renew(
    *, by: User, contract: Contract, ends_on: dt.date | None = None, value: Money | None = None
) -> Contract:
    """A new active contract for the next term, linked by renewal_of; the old one is renewed.

    Run twice, it returns the renewal the first run made.
    """
    with transaction.atomic():
        contract = _locked_contract(contract)
        existing = Contract.objects.filter(renewal_of=contract).first()
        if existing is not None:
            return existing
        if contract.ends_on is None:
            raise ServiceError(
                _("A contract without an end date runs on: there is nothing to renew."),
                field="ends_on",
            )
        _set_status(by, contract, Contract.Status.RENEWED)
        starts_on = contract.ends_on + dt.timedelta(days=1)
        ends_on = ends_on or starts_on + (contract.ends_on - contract.starts_on)
        renewal = contract_create(
            by=by,
            client=contract.client,
            title=contract.title,
            starts_on=starts_on,
            ends_on=ends_on,
            value=value or Money(contract.value_minor, contract.currency),
            deal=contract.deal,
            template=contract.template,
            terms=contract.terms,
            owner=contract.owner,
        )
        renewal.renewal_of = contract
        renewal.status = Contract.Status.ACTIVE
        renewal.save(update_fields=["renewal_of", "status"])
        ContractLine.objects.bulk_create(
            ContractLine(
                contract=renewal,
                **{
                    f.attname: getattr(line, f.attname)
                    for f in ContractLine._meta.concrete_fields
                    if f.attname not in ("id", "contract_id")
                },
            )
            for line in contract.lines.all()
        )
        _event("contract.renewed", contract, by, renewal=renewal.number)
    return renewal


def contract_template_save(
    *, by: User, template: ContractTemplate | None, name: str, body: str, is_default: bool
) -> ContractTemplate:
    """Create or change a contract template; its merge tags must all be known."""
    from clientbase.sales.quote_pdf import check_contract_template

    name = " ".join((name or "").split())[:100]
    if not name:
        raise ServiceError(_("Give the template a name."), field="name")
    if not (body or "").strip():
        raise ServiceError(_("Write the text of the contract."), field="body")
    check_contract_template(body)
    clash = ContractTemplate.objects.filter(name=name)
    if template is not None:
        clash = clash.exclude(pk=template.pk)
    if clash.exists():
        raise ServiceError(_("Another template has this name."), field="name")
    with transaction.atomic():
        if is_default:
            ContractTemplate.objects.filter(is_default=True).update(is_default=False)
        if template is None:
            template = ContractTemplate.objects.create(name=name, body=body, is_default=is_default)
            audit_create(template, by=by)
        else:
            before = snapshot(template)
            template.name, template.body, template.is_default = name, body, is_default
            template.updated_at = clock.now()
            template.save(update_fields=["name", "body", "is_default", "updated_at"])
            audit_update(template, before, by=by)
    return template


# --- the daily job --------------------------------------------------------------------------


def _month_end(day: dt.date) -> dt.date:
    following = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


def contracts_renewal_run(day: dt.date) -> tuple[int, int]:
    """Expire active contracts that ended before `day`; remind each owner once of every
    contract ending this month (a mail and a task). Returns (expired, reminded)."""
    expired = 0
    for contract in Contract.objects.filter(status=Contract.Status.ACTIVE, ends_on__lt=day):
        with transaction.atomic():
            locked = _locked_contract(contract)
            if locked.status == Contract.Status.ACTIVE:
                _set_status(None, locked, Contract.Status.EXPIRED)
                expired += 1
    reminded = 0
    due = Contract.objects.filter(
        status=Contract.Status.ACTIVE,
        ends_on__gte=day,
        ends_on__lte=_month_end(day),
        owner__isnull=False,
    ).select_related("client", "owner")
    for contract in due:
        if contract.reminded_for == contract.ends_on:
            continue
        with transaction.atomic():
            locked = _locked_contract(contract)
            if locked.reminded_for == locked.ends_on:
                continue
            _remind_renewal(locked, contract.client, contract.owner)
            reminded += 1
    return expired, reminded


def _remind_renewal(contract: Contract, client: Client, owner: User) -> None:
    from clientbase.sales.quote_pdf import send_renewal_reminder

    activity_create(
        by=None,
        owner=owner,
        kind=Activity.Kind.TASK,
        subject=_("Renew contract %(number)s with %(client)s")
        % {"number": contract.number, "client": client.name},
        due_at=dt.datetime.combine(contract.ends_on, dt.time(9), tzinfo=dt.UTC),
        client=client,
        origin_key=f"contract-renewal:{contract.pk}:{contract.ends_on.isoformat()}",
    )
    contract.reminded_for = contract.ends_on
    contract.save(update_fields=["reminded_for"])
    contract_id = contract.pk
    transaction.on_commit(lambda: send_renewal_reminder(contract_id))
