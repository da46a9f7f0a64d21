"""Billing over the API: orders, services, invoices, payments, refunds, credit notes and the
ledger, through the same services and visibility as the UI.

Amounts are decimal strings with their currency, `{"amount": "662.98", "currency": "RUB"}`;
a record out of the caller's sight is a 404, an action the role does not allow a 403.
"""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Prefetch, Sum, Window, prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, File, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.pagination import paginate

from clientbase.billing import queries, services
from clientbase.billing.bank import (
    MAX_STATEMENT_BYTES,
    bank_payment_assign,
    bank_payment_ignore,
    statement_import,
)
from clientbase.billing.credit import credit_limit_remove, credit_limit_set, limits_of
from clientbase.billing.ledger import client_sums
from clientbase.billing.models import (
    BankPayment,
    BankStatement,
    BillingRun,
    CreditNote,
    Invoice,
    Order,
    Payment,
    PaymentMethod,
    Refund,
    Service,
)
from clientbase.billing.run import (
    billing_run_request,
    is_interrupted,
    next_renewal_price,
    rate,
)
from clientbase.catalog.models import Cycle, Product
from clientbase.clients.api import DeferredActionOut
from clientbase.clients.models import Client
from clientbase.clients.queries import client_get
from clientbase.clients.services import history_ids
from clientbase.core.api_base import Id, Page, Text, problems
from clientbase.core.errors import ServiceError
from clientbase.core.money import Money
from clientbase.core.visibility import get_visible_or_404, visible

router = Router()

# Far enough for any bill; a date beyond would overflow the date arithmetic of due dates.
Day = Annotated[dt.date, Field(ge=dt.date(1900, 1, 1), le=dt.date(2999, 12, 31))]
AmountText = Annotated[Text, Field(min_length=1, max_length=40, examples=["120.50"])]
CurrencyText = Annotated[Text, Field(min_length=1, max_length=3, examples=["EUR"])]
Reason = Annotated[Text, Field(max_length=500)]
Units = Annotated[int, Field(ge=0, le=1_000_000)]
# Larger amounts than this are mistakes, and would overflow a 64-bit column once summed.
MAX_MINOR = 10**15
SortKey = Literal[tuple(queries.SORTS)]  # type: ignore[valid-type]


def _require(request: HttpRequest, action: str) -> None:
    """A 403 problem unless the caller's role allows the action."""
    if not request.user.has_perm(action):
        raise PermissionDenied


@contextmanager
def _fields(**renames: str) -> Iterator[None]:
    """Re-raise a service's refusal with each field named as the API calls it."""
    try:
        yield
    except ServiceError as refused:
        if not hasattr(refused, "error_dict"):
            raise
        errors = {renames.get(name, name): msgs for name, msgs in refused.message_dict.items()}
        raise type(refused)(errors=errors) from refused


def _money(minor: int, currency: str) -> dict:
    return {"amount": f"{Money(minor, currency).amount:f}", "currency": currency}


def _parse_money(text: str, currency: str, field: str) -> Money:
    """A typed amount in a known currency, refused at its field when it is not one."""
    amount = services.parse_money(text, currency, field)
    if abs(amount.minor) >= MAX_MINOR:
        raise ServiceError(_("The amount is too large."), field=field)
    return amount


def _client_ref(request: HttpRequest, client_id: int, field: str = "client_id"):
    """A client named in a body: one the caller may see, else a refusal at the field."""
    # No joins: the services load what they need of the client under their own lock.
    client = visible(Client.objects.all(), request.user).filter(pk=client_id).first()
    if client is None:
        raise ServiceError(_("No client you may see has this id."), field=field)
    return client


def _invoice_ref(
    request: HttpRequest, invoice_id: int, field: str = "invoice_id", *, lean: bool = False
) -> Invoice:
    """An invoice named in a body; `lean` for a service that locks and reloads it itself."""
    found = Invoice.objects.only("id", "client_id") if lean else queries.invoices_for(request.user)
    invoice = visible(found, request.user).filter(pk=invoice_id).first()
    if invoice is None:
        raise ServiceError(_("No invoice you may see has this id."), field=field)
    return invoice


def _product_ref(product_id: int, field: str) -> Product:
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        raise ServiceError(_("No such product."), field=field)
    return product


# ----------------------------------------------------------------------------- schemas


class MoneyOut(Schema):
    """An amount: a decimal string in major units, and its currency."""

    amount: str = Field(examples=["662.98"])
    currency: str = Field(examples=["RUB"])


class OrderItemOut(Schema):
    """One product of an order."""

    id: int
    product_id: int
    cycle: str
    quantity: int
    options: dict[str, Any]
    price_override: MoneyOut | None

    @staticmethod
    def resolve_price_override(item) -> dict | None:
        if item.price_override_minor is None:
            return None
        return _money(item.price_override_minor, item.order.currency)


class OrderOut(Schema):
    """An order and its items."""

    id: int
    number: str
    client_id: int
    status: str
    currency: str
    payment_method: str
    promo_code: str | None
    send_email: bool
    note: str
    created_at: dt.datetime
    decided_at: dt.datetime | None
    cancel_reason: str
    invoice_id: int | None = Field(description="the first invoice accepting the order drafted")
    invoice_ids: list[int] = Field(
        description="every invoice it drafted: one per service for a client who wants that"
    )
    items: list[OrderItemOut]

    @staticmethod
    def resolve_promo_code(order) -> str | None:
        return order.promo.code if order.promo_id else None

    @staticmethod
    def resolve_items(order) -> list:
        return list(order.items.all())

    @staticmethod
    def resolve_invoice_ids(order) -> list[int]:
        return [invoice.pk for invoice in order.invoices.all()]


class OrderItemIn(Schema):
    """A product to order: its cycle, quantity, options ({code: units}) and agreed price."""

    product_id: Id
    cycle: Cycle
    quantity: int = Field(1, ge=1, le=1_000_000)
    options: dict[Annotated[Text, Field(max_length=40)], Units] = Field(default_factory=dict)
    price_override: AmountText | None = Field(
        None, description="the price of one cycle as agreed, options included"
    )


class OrderIn(Schema):
    """A new order."""

    client_id: Id
    items: list[OrderItemIn] = Field(max_length=100)
    payment_method: PaymentMethod | None = Field(None, description="the client's by default")
    promo_code: Text = Field("", max_length=40)
    send_email: bool = True
    note: Text = Field("", max_length=5000)


class OrderCancelIn(Schema):
    """Why a pending order is dropped; `fraud` marks it as fraud."""

    reason: Reason = ""
    fraud: bool = False


class ServiceOut(Schema):
    """A product a client has."""

    id: int
    client_id: int
    product_id: int
    product_name: str = Field(alias="product.name")
    order_id: int | None
    cycle: str
    quantity: int
    options: dict[str, Any]
    recurring: MoneyOut
    price_overridden: bool
    promo_id: int | None
    status: str
    status_reason: str
    registered_on: dt.date
    period_start: dt.date | None
    next_due_on: dt.date | None
    suspend_exempt_until: dt.date | None
    cancel_at_period_end: bool
    next_invoice_price: MoneyOut | None = Field(
        None, description="what the next renewal invoice will charge before promo and tax"
    )
    renews_at_catalogue_price: bool = Field(
        False, description="a price change for existing services applies at the next renewal"
    )

    @staticmethod
    def resolve_recurring(service) -> dict:
        return _money(service.recurring_minor, service.currency)

    @staticmethod
    def resolve_next_invoice_price(service) -> dict | None:
        price = next_renewal_price(service)
        return _money(price["amount"].minor, service.currency) if price else None

    @staticmethod
    def resolve_renews_at_catalogue_price(service) -> bool:
        return service.reprice_at_renewal and not service.price_overridden


class LineIn(Schema):
    """A line of a draft invoice; `tax_rate` null takes the client's rate."""

    description: Text = Field(min_length=1, max_length=500)
    quantity: Decimal = Field(Decimal(1), max_digits=12, decimal_places=3)
    unit_price: Decimal = Field(max_digits=18, decimal_places=4, examples=["12.00"])
    discount_percent: Decimal = Field(Decimal(0), max_digits=5, decimal_places=2)
    taxable: bool = True
    tax_rate: Decimal | None = Field(None, max_digits=6, decimal_places=3)
    tax_inclusive: bool = False
    period_start: Day | None = None
    period_end: Day | None = None


class LineOut(Schema):
    """A line as billed: amounts rounded once to the minor unit."""

    id: int
    position: int
    service_id: int | None
    description: str
    period_start: dt.date | None
    period_end: dt.date | None
    quantity: str
    unit_price: str
    discount_percent: str
    taxable: bool
    tax_rate: str
    tax_inclusive: bool
    net: MoneyOut
    tax: MoneyOut

    @staticmethod
    def resolve_quantity(line) -> str:
        return f"{line.quantity:f}"

    @staticmethod
    def resolve_unit_price(line) -> str:
        return f"{line.unit_price:f}"

    @staticmethod
    def resolve_discount_percent(line) -> str:
        return f"{line.discount_percent:f}"

    @staticmethod
    def resolve_tax_rate(line) -> str:
        return f"{line.tax_rate:f}"

    @staticmethod
    def resolve_net(line) -> dict:
        return _money(line.net_minor, line.invoice.currency)

    @staticmethod
    def resolve_tax(line) -> dict:
        return _money(line.tax_minor, line.invoice.currency)


def _amount_resolver(field: str):
    def resolve(invoice) -> dict:
        return _money(getattr(invoice, field), invoice.currency)

    return staticmethod(resolve)


class InvoiceListOut(Schema):
    """An invoice as lists show it."""

    id: int
    number: str
    client_id: int
    status: str
    currency: str
    issued_on: dt.date
    due_on: dt.date
    period_start: dt.date | None
    subtotal: MoneyOut
    tax: MoneyOut
    total: MoneyOut
    paid: MoneyOut
    credited: MoneyOut
    refunded: MoneyOut
    balance: MoneyOut
    paid_on: dt.date | None
    sent_at: dt.datetime | None
    credit_top_up: bool = Field(description="what is paid on it goes to the credit balance")
    version: int

    resolve_subtotal = _amount_resolver("subtotal_minor")
    resolve_tax = _amount_resolver("tax_minor")
    resolve_total = _amount_resolver("total_minor")
    resolve_paid = _amount_resolver("paid_minor")
    resolve_credited = _amount_resolver("credited_minor")
    resolve_refunded = _amount_resolver("refunded_minor")
    resolve_balance = _amount_resolver("balance_minor")


class InvoiceOut(InvoiceListOut):
    """An invoice with its lines, notes and the client as it was issued."""

    notes: str
    snapshot: dict[str, Any]
    created_at: dt.datetime
    lines: list[LineOut]

    @staticmethod
    def resolve_lines(invoice) -> list:
        lines = list(invoice.lines.all())
        for line in lines:
            line.invoice = invoice  # the currency of each line, without a query per line
        return lines


class InvoiceIn(Schema):
    """A new draft invoice, in the client's currency."""

    client_id: Id
    issued_on: Day | None = Field(None, description="today by default")
    due_on: Day | None = Field(None, description="a week after the invoice date by default")
    notes: Text = Field("", max_length=5000)
    lines: list[LineIn] = Field(default_factory=list, max_length=500)


class InvoicePatch(Schema):
    """Changes to a draft; `lines`, when given, replaces every line."""

    issued_on: Day | None = None
    due_on: Day | None = None
    notes: Text | None = Field(None, max_length=5000)
    lines: list[LineIn] | None = Field(None, max_length=500)


class InvoiceSendIn(Schema):
    """Where to send the invoice: the client's email by default."""

    to: Text | None = Field(None, max_length=254)


class ReasonIn(Schema):
    """Why."""

    reason: Reason = ""


class AllocationIn(Schema):
    """An invoice to pay from the payment; `amount` null takes what it still owes."""

    invoice_id: Id
    amount: AmountText | None = None


class PaymentIn(Schema):
    """Money received; what the invoices do not take goes to the client's credit."""

    client_id: Id
    amount: AmountText
    currency: CurrencyText
    method: PaymentMethod
    received_on: Day | None = Field(None, description="today by default")
    reference: Text = Field("", max_length=200)
    invoices: list[AllocationIn] = Field(default_factory=list, max_length=500)


class AllocationOut(Schema):
    """The part of a payment that settled one invoice."""

    invoice_id: int
    invoice_number: str = Field(alias="invoice.number")
    amount: MoneyOut
    refunded: MoneyOut

    @staticmethod
    def resolve_amount(allocation) -> dict:
        return _money(allocation.amount_minor, allocation.invoice.currency)

    @staticmethod
    def resolve_refunded(allocation) -> dict:
        return _money(allocation.refunded_minor, allocation.invoice.currency)


class PaymentOut(Schema):
    """A payment, where it went, and what went to credit."""

    id: int
    number: str
    client_id: int
    method: str
    amount: MoneyOut
    received_on: dt.date
    reference: str
    to_credit: MoneyOut
    refunded: MoneyOut
    created_at: dt.datetime
    allocations: list[AllocationOut]

    @staticmethod
    def resolve_amount(payment) -> dict:
        return _money(payment.amount_minor, payment.currency)

    @staticmethod
    def resolve_to_credit(payment) -> dict:
        return _money(payment.to_credit_minor, payment.currency)

    @staticmethod
    def resolve_refunded(payment) -> dict:
        return _money(payment.refunded_minor, payment.currency)

    @staticmethod
    def resolve_allocations(payment) -> list:
        return list(payment.allocations.all())


class RefundIn(Schema):
    """Money given back: what was paid on an invoice (to credit or out), or credit held (out)."""

    invoice_id: Id | None = None
    client_id: Id | None = Field(None, description="for paying out credit held")
    amount: AmountText
    currency: CurrencyText
    destination: Refund.Destination
    method: PaymentMethod | Literal[""] = ""
    reason: Reason = ""


class RefundOut(Schema):
    """A refund."""

    id: int
    number: str
    client_id: int
    invoice_id: int | None
    destination: str
    method: str
    amount: MoneyOut
    reason: str
    created_at: dt.datetime

    @staticmethod
    def resolve_amount(refund) -> dict:
        return _money(refund.amount_minor, refund.currency)


class CreditNoteIn(Schema):
    """A reduction of an issued invoice; a write-off forgives only what is still owed."""

    invoice_id: Id
    amount: AmountText
    currency: CurrencyText
    reason: Reason = ""
    kind: CreditNote.Kind = CreditNote.Kind.CREDIT_NOTE


class CreditNoteOut(Schema):
    """A credit note or write-off."""

    id: int
    number: str
    kind: str
    client_id: int
    invoice_id: int
    amount: MoneyOut
    reason: str
    created_at: dt.datetime

    @staticmethod
    def resolve_amount(note) -> dict:
        return _money(note.amount_minor, note.currency)


# ----------------------------------------------------------------------------- orders


# The ids of the invoices an order drafted, oldest first, in one query for a whole page.
_ORDER_INVOICES = Prefetch(
    "invoices", queryset=Invoice.objects.only("id", "order_id").order_by("id")
)


def _order(request: HttpRequest, order_id: int) -> Order:
    return get_visible_or_404(
        Order.objects.select_related("promo").prefetch_related("items__order", _ORDER_INVOICES),
        request.user,
        pk=order_id,
    )


@router.get("/orders", response={200: list[OrderOut], **problems(422)}, summary="List orders")
@paginate(Page)
def order_list(
    request: HttpRequest, status: Order.Status | None = None, client_id: Id | None = None
):
    """Orders you may see, newest first."""
    found = queries.orders_for(request.user).select_related("promo")
    if status:
        found = found.filter(status=status)
    if client_id:
        found = found.filter(client_id=client_id)
    return found.prefetch_related("items__order", _ORDER_INVOICES).order_by("-id")


@router.post(
    "/orders", response={201: OrderOut, **problems(400, 403, 409, 422)}, summary="Place an order"
)
def order_create(request: HttpRequest, payload: OrderIn):
    """A pending order for a client you may see, priced now from the catalogue."""
    _require(request, "billing.sell")
    client = _client_ref(request, payload.client_id)
    items = []
    for i, item in enumerate(payload.items):
        override = None
        if item.price_override is not None:
            override = _parse_money(
                item.price_override, client.currency, f"items.{i}.price_override"
            )
        items.append(
            services.ItemSpec(
                product=_product_ref(item.product_id, f"items.{i}.product_id"),
                cycle=item.cycle,
                quantity=item.quantity,
                options=dict(item.options),
                price_override=override,
            )
        )
    with _fields(client="client_id"):
        order = services.order_create(
            by=request.user,
            client=client,
            items=items,
            payment_method=payload.payment_method,
            promo_code=payload.promo_code,
            send_email=payload.send_email,
            note=payload.note,
        )
    return Status(201, _order(request, order.pk))


@router.get(
    "/orders/{order_id}", response={200: OrderOut, **problems(404, 422)}, summary="Get an order"
)
def order_get(request: HttpRequest, order_id: Id):
    """One order you may see."""
    return _order(request, order_id)


@router.post(
    "/orders/{order_id}/accept",
    response={200: OrderOut, **problems(400, 403, 404, 409, 422)},
    summary="Accept an order",
)
def order_accept(request: HttpRequest, order_id: Id):
    """Create the order's services, active from today, and a draft invoice for them."""
    order = _order(request, order_id)
    _require(request, "billing.sell")
    services.order_accept(by=request.user, order=order)
    return _order(request, order_id)


@router.post(
    "/orders/{order_id}/cancel",
    response={200: OrderOut, **problems(400, 403, 404, 409, 422)},
    summary="Cancel an order",
)
def order_cancel(request: HttpRequest, order_id: Id, payload: OrderCancelIn):
    """Cancel a pending order, or mark it as fraud."""
    order = _order(request, order_id)
    _require(request, "billing.sell")
    services.order_cancel(by=request.user, order=order, reason=payload.reason, fraud=payload.fraud)
    return _order(request, order_id)


# ----------------------------------------------------------------------------- services


def _service(request: HttpRequest, service_id: int) -> Service:
    return get_visible_or_404(queries.services_for(request.user), request.user, pk=service_id)


@router.get("/services", response={200: list[ServiceOut], **problems(422)}, summary="List services")
@paginate(Page)
def service_list(
    request: HttpRequest,
    client_id: Id | None = None,
    status: Service.Status | None = None,
    due: bool = False,
):
    """Services you may see, newest first; `due` keeps those renewing within 14 days."""
    found = queries.services_due(request.user) if due else queries.services_for(request.user)
    if client_id:
        found = found.filter(client_id=client_id)
    if status:
        found = found.filter(status=status)
    return found.order_by("-id")


@router.get(
    "/services/{service_id}",
    response={200: ServiceOut, **problems(404, 422)},
    summary="Get a service",
)
def service_get(request: HttpRequest, service_id: Id):
    """One service you may see."""
    return _service(request, service_id)


class ChangeIn(Schema):
    """What to change; `preview` prices the change without making it."""

    product_id: Id | None = None
    cycle: Cycle | None = None
    quantity: int | None = Field(None, ge=1, le=1_000_000)
    options: dict[Annotated[Text, Field(max_length=40)], Units] | None = None
    preview: bool = False


class ChangeOut(Schema):
    """The price of a change by the days left in the cycle; once applied, the service and
    the invoice of the charge (none for a downgrade, whose difference goes to credit)."""

    applied: bool
    product_id: int
    cycle: str
    quantity: int
    options: dict[str, Any]
    days_left: int
    cycle_days: int
    old_recurring: MoneyOut
    new_recurring: MoneyOut
    charge: MoneyOut = Field(description="before promo and tax; negative: credit")
    total: MoneyOut = Field(
        description="the charge with the recurring promo and tax: what is invoiced, or "
        "credited when negative"
    )
    new_period_start: dt.date
    new_next_due: dt.date | None
    service: ServiceOut
    invoice: InvoiceOut | None


def _change_out(preview: services.ChangePreview, service, invoice, *, applied: bool) -> dict:
    return {
        "applied": applied,
        "product_id": preview.product.pk,
        "cycle": preview.cycle,
        "quantity": preview.quantity,
        "options": {c.option.code: c.units for c in preview.quote.options},
        "days_left": preview.days_left,
        "cycle_days": preview.cycle_days,
        "old_recurring": _money(preview.old_recurring.minor, preview.old_recurring.currency),
        "new_recurring": _money(preview.new_recurring.minor, preview.new_recurring.currency),
        "charge": _money(preview.charge.minor, preview.charge.currency),
        "total": _money(preview.total.minor, preview.total.currency),
        "new_period_start": preview.new_period_start,
        "new_next_due": preview.new_next_due,
        "service": service,
        "invoice": invoice,
    }


@router.post(
    "/services/{service_id}/upgrade",
    response={200: ChangeOut, **problems(400, 403, 404, 409, 422)},
    summary="Upgrade or downgrade a service",
)
def service_upgrade(request: HttpRequest, service_id: Id, payload: ChangeIn):
    """Change product, cycle, quantity or options, priced by the days left in the cycle.

    With `preview` nothing changes; otherwise the charge is invoiced (and issued) at once,
    or, for a downgrade, the difference goes to the client's credit.
    """
    service = _service(request, service_id)
    _require(request, "billing.sell")
    product = (
        _product_ref(payload.product_id, "product_id") if payload.product_id is not None else None
    )
    change = {
        "product": product,
        "cycle": payload.cycle,
        "quantity": payload.quantity,
        "options": payload.options,
    }
    if payload.preview:
        preview = services.service_change_preview(service=service, **change)
        return _change_out(preview, service, None, applied=False)
    service, invoice, preview = services.service_change(by=request.user, service=service, **change)
    if invoice is not None:
        invoice = _with_lines(invoice)
    return _change_out(preview, service, invoice, applied=True)


def _service_action(request: HttpRequest, service_id: int, action: str, reason: str) -> Service:
    service = _service(request, service_id)
    _require(request, "billing.sell")
    return services.service_action(by=request.user, service=service, action=action, reason=reason)


_ACTION_RESPONSES = {200: ServiceOut, **problems(400, 403, 404, 409, 422)}


@router.post(
    "/services/{service_id}/suspend", response=_ACTION_RESPONSES, summary="Suspend a service"
)
def service_suspend(request: HttpRequest, service_id: Id, payload: ReasonIn):
    """Suspend an active service."""
    return _service_action(request, service_id, "suspend", payload.reason)


@router.post(
    "/services/{service_id}/unsuspend", response=_ACTION_RESPONSES, summary="Unsuspend a service"
)
def service_unsuspend(request: HttpRequest, service_id: Id, payload: ReasonIn):
    """Make a suspended service active again."""
    return _service_action(request, service_id, "unsuspend", payload.reason)


@router.post(
    "/services/{service_id}/terminate", response=_ACTION_RESPONSES, summary="Terminate a service"
)
def service_terminate(request: HttpRequest, service_id: Id, payload: ReasonIn):
    """End a live service now."""
    return _service_action(request, service_id, "terminate", payload.reason)


@router.post(
    "/services/{service_id}/cancel", response=_ACTION_RESPONSES, summary="Cancel a service"
)
def service_cancel(request: HttpRequest, service_id: Id, payload: ReasonIn):
    """Cancel a live service now (to cancel when the paid period ends, PATCH it)."""
    return _service_action(request, service_id, "cancel", payload.reason)


class ScheduleIn(Schema):
    """A lifecycle action for a later day."""

    action: Literal["activate", "suspend", "unsuspend", "terminate", "cancel"]
    reason: Reason = Field(min_length=1)
    due_on: Day


@router.post(
    "/services/{service_id}/scheduled-actions",
    response={201: DeferredActionOut, **problems(400, 403, 404, 409, 422)},
    summary="Schedule a service action",
)
def service_schedule(request: HttpRequest, service_id: Id, payload: ScheduleIn):
    """Suspend, terminate, cancel… on a later day; listed with the client's deferred
    actions, where it can be edited, executed now or deleted while pending."""
    service = _service(request, service_id)
    _require(request, "billing.sell")
    scheduled = services.service_action_schedule(
        by=request.user,
        service=service,
        action=payload.action,
        reason=payload.reason,
        due_on=payload.due_on,
    )
    return Status(201, scheduled)


class TransferIn(Schema):
    """The client to move the service to, in the same currency."""

    client_id: Id
    reason: Reason = ""


@router.post(
    "/services/{service_id}/transfer",
    response=_ACTION_RESPONSES,
    summary="Transfer a service to another client",
)
def service_transfer(request: HttpRequest, service_id: Id, payload: TransferIn):
    """Move a service to another client you may see; its invoices stay where they are."""
    service = _service(request, service_id)
    _require(request, "billing.sell")
    target = _client_ref(request, payload.client_id)
    with _fields(to_client="client_id"):
        # The service as it now is, even if the new client is out of the caller's sight.
        return services.service_transfer(
            by=request.user, service=service, to_client=target, reason=payload.reason
        )


class ServicePatch(Schema):
    """Dates of a service, and cancellation at the end of its period (with a reason)."""

    next_due_on: Day | None = None
    suspend_exempt_until: Day | None = None
    cancel_at_period_end: bool | None = None
    reason: Reason = ""


@router.patch(
    "/services/{service_id}",
    response={200: ServiceOut, **problems(400, 403, 404, 409, 422)},
    summary="Change a service's dates",
)
def service_patch(request: HttpRequest, service_id: Id, payload: ServicePatch):
    """Change the next due date, the auto-suspension exemption, or cancel at period end."""
    service = _service(request, service_id)
    _require(request, "billing.sell")
    sent = payload.dict(exclude_unset=True)
    with transaction.atomic():
        if {"next_due_on", "suspend_exempt_until"} & set(sent):
            services.service_update(
                by=request.user,
                service=service,
                next_due_on=sent.get("next_due_on", service.next_due_on),
                suspend_exempt_until=sent.get("suspend_exempt_until", service.suspend_exempt_until),
            )
        if sent.get("cancel_at_period_end") is not None:
            services.service_cancel_at_period_end(
                by=request.user,
                service=service,
                reason=payload.reason,
                cancel=payload.cancel_at_period_end,
            )
    return _service(request, service_id)


# ----------------------------------------------------------------------------- invoices


def _invoice(request: HttpRequest, invoice_id: int, *, lines: bool = True) -> Invoice:
    found = Invoice.objects.prefetch_related("lines") if lines else Invoice.objects.all()
    return get_visible_or_404(found, request.user, pk=invoice_id)


def _with_lines(invoice: Invoice) -> Invoice:
    """The invoice a service returned, with its lines, for the answer (one query)."""
    prefetch_related_objects([invoice], "lines")
    return invoice


def _line_spec(line: LineIn) -> services.LineSpec:
    return services.LineSpec(**line.dict())


@router.get(
    "/invoices", response={200: list[InvoiceListOut], **problems(422)}, summary="Search bills"
)
@paginate(Page)
def invoice_list(
    request: HttpRequest,
    number: Annotated[Text, Field(max_length=40)] = "",
    date_from: Day | None = None,
    date_to: Day | None = None,
    last: Annotated[int, Field(ge=1, le=10_000)] | None = None,
    status: Invoice.Status | None = None,
    zero_balance: bool | None = None,
    sort: SortKey = "-number",
    client_id: Id | None = None,
):
    """Invoices you may see, by number pattern, dates, status and balance, sorted.

    `number` with `*`: `72*` begins with 72, `*815` ends with 815; `last` keeps the N most
    recently issued.
    """
    return queries.bills_search(
        request.user,
        queries.BillSearch(
            number=number,
            date_from=date_from,
            date_to=date_to,
            status=status or "",
            zero_balance=zero_balance,
            client_id=client_id,
            last=last,
            sort=sort,
        ),
    )


@router.post(
    "/invoices",
    response={201: InvoiceOut, **problems(400, 403, 409, 422)},
    summary="Create a draft invoice",
)
def invoice_create(request: HttpRequest, payload: InvoiceIn):
    """A draft for a client you may see, in the client's currency."""
    _require(request, "billing.invoice")
    client = _client_ref(request, payload.client_id)
    with _fields(client="client_id"):
        invoice = services.invoice_create(
            by=request.user,
            client=client,
            lines=[_line_spec(line) for line in payload.lines],
            issued_on=payload.issued_on,
            due_on=payload.due_on,
            notes=payload.notes,
        )
    return Status(201, _invoice(request, invoice.pk))


@router.get(
    "/invoices/{invoice_id}",
    response={200: InvoiceOut, **problems(404, 422)},
    summary="Get an invoice",
)
def invoice_get(request: HttpRequest, invoice_id: Id):
    """One invoice you may see, with its lines and totals."""
    return _invoice(request, invoice_id)


@router.patch(
    "/invoices/{invoice_id}",
    response={200: InvoiceOut, **problems(400, 403, 404, 409, 422)},
    summary="Change a draft invoice",
)
def invoice_patch(request: HttpRequest, invoice_id: Id, payload: InvoicePatch):
    """Change a draft's dates and notes, or replace its lines; an issued invoice is a 409."""
    invoice = _invoice(request, invoice_id, lines=False)
    _require(request, "billing.invoice")
    sent = payload.dict(exclude_unset=True)
    specs = [_line_spec(line) for line in payload.lines] if payload.lines is not None else None
    with transaction.atomic():
        # Always through invoice_update: it locks the draft and refuses an issued invoice.
        services.invoice_update(
            by=request.user,
            invoice=invoice,
            issued_on=sent.get("issued_on") or invoice.issued_on,
            due_on=sent.get("due_on") or invoice.due_on,
            notes=sent["notes"] if sent.get("notes") is not None else invoice.notes,
        )
        if specs is not None:
            for line in list(invoice.lines.all()):
                services.invoice_line_delete(by=request.user, line=line)
            for spec in specs:
                services.invoice_line_add(by=request.user, invoice=invoice, line=spec)
    return _invoice(request, invoice_id)


@router.post(
    "/invoices/{invoice_id}/issue",
    response={200: InvoiceOut, **problems(400, 403, 404, 409, 422)},
    summary="Issue an invoice",
)
def invoice_issue(request: HttpRequest, invoice_id: Id):
    """Number the draft and freeze it; what it claims is posted to the ledger."""
    invoice = _invoice(request, invoice_id, lines=False)
    _require(request, "billing.invoice")
    return _with_lines(services.invoice_issue(by=request.user, invoice=invoice))


@router.post(
    "/invoices/{invoice_id}/send",
    response={200: InvoiceOut, **problems(400, 403, 404, 409, 422)},
    summary="Email an invoice",
)
def invoice_send(request: HttpRequest, invoice_id: Id, payload: InvoiceSendIn):
    """Email an issued invoice with its PDF, to the client's address unless `to` is given."""
    invoice = _invoice(request, invoice_id, lines=False)
    _require(request, "billing.invoice")
    return _with_lines(services.invoice_send(by=request.user, invoice=invoice, to=payload.to))


@router.post(
    "/invoices/{invoice_id}/cancel",
    response={200: InvoiceOut, **problems(400, 403, 404, 409, 422)},
    summary="Cancel an invoice",
)
def invoice_cancel(request: HttpRequest, invoice_id: Id, payload: ReasonIn):
    """Cancel a draft, or an issued invoice on which nothing was paid or credited."""
    invoice = _invoice(request, invoice_id, lines=False)
    _require(request, "billing.invoice")
    return _with_lines(
        services.invoice_cancel(by=request.user, invoice=invoice, reason=payload.reason)
    )


class ApplyCreditIn(Schema):
    """How much of the client's credit to put on the invoice; null takes all it can."""

    amount: AmountText | None = None


@router.post(
    "/invoices/{invoice_id}/apply-credit",
    response={200: InvoiceOut, **problems(400, 403, 404, 409, 422)},
    summary="Pay an invoice from credit",
)
def invoice_apply_credit(request: HttpRequest, invoice_id: Id, payload: ApplyCreditIn):
    """Pay the invoice from the client's credit balance: all it can, or the amount given."""
    invoice = _invoice(request, invoice_id, lines=False)
    _require(request, "billing.payment")
    amount = None
    if payload.amount is not None:
        amount = _parse_money(payload.amount, invoice.currency, "amount")
    services.credit_apply(by=request.user, invoice=invoice, amount=amount)
    return _invoice(request, invoice_id)


@router.get(
    "/invoices/{invoice_id}/pdf",
    response={200: None, **problems(404, 422)},
    summary="An invoice as PDF",
)
def invoice_pdf(request: HttpRequest, invoice_id: Id):
    """The invoice as the client gets it (application/pdf)."""
    from clientbase.billing.pdf import invoice_pdf as render

    invoice = _invoice(request, invoice_id)
    name = invoice.number or f"draft-{invoice.pk}"
    return HttpResponse(
        render(invoice),
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}.pdf"'},
    )


# ----------------------------------------------------------------------------- money


def _payment(request: HttpRequest, payment_id: int) -> Payment:
    return get_visible_or_404(
        Payment.objects.prefetch_related("allocations__invoice"), request.user, pk=payment_id
    )


@router.get("/payments", response={200: list[PaymentOut], **problems(422)}, summary="List payments")
@paginate(Page)
def payment_list(request: HttpRequest, client_id: Id | None = None):
    """Payments you may see, newest first."""
    found = queries.payments_for(request.user)
    if client_id:
        found = found.filter(client_id=client_id)
    return found.prefetch_related("allocations__invoice").order_by("-id")


@router.post(
    "/payments",
    response={201: PaymentOut, **problems(400, 403, 409, 422)},
    summary="Record a payment",
)
def payment_create(request: HttpRequest, payload: PaymentIn):
    """Record money received and spread it over invoices in order; the rest goes to credit."""
    _require(request, "billing.payment")
    client = _client_ref(request, payload.client_id)
    amount = _parse_money(payload.amount, payload.currency, "amount")
    allocations = []
    for i, row in enumerate(payload.invoices):
        invoice = _invoice_ref(request, row.invoice_id, f"invoices.{i}.invoice_id", lean=True)
        share = None
        if row.amount is not None:
            share = _parse_money(row.amount, payload.currency, f"invoices.{i}.amount")
        allocations.append((invoice, share))
    with _fields(client="client_id"):
        payment = services.payment_record(
            by=request.user,
            client=client,
            amount=amount,
            method=payload.method,
            invoices=allocations,
            received_on=payload.received_on,
            reference=payload.reference,
        )
    prefetch_related_objects([payment], "allocations__invoice")
    return Status(201, payment)


@router.get(
    "/payments/{payment_id}",
    response={200: PaymentOut, **problems(404, 422)},
    summary="Get a payment",
)
def payment_get(request: HttpRequest, payment_id: Id):
    """One payment you may see, with its allocations."""
    return _payment(request, payment_id)


@router.get("/refunds", response={200: list[RefundOut], **problems(422)}, summary="List refunds")
@paginate(Page)
def refund_list(request: HttpRequest, client_id: Id | None = None, invoice_id: Id | None = None):
    """Refunds you may see, newest first."""
    found = visible(Refund.objects.all(), request.user)
    if client_id:
        found = found.filter(client_id=client_id)
    if invoice_id:
        found = found.filter(invoice_id=invoice_id)
    return found.order_by("-id")


@router.post(
    "/refunds", response={201: RefundOut, **problems(400, 403, 409, 422)}, summary="Refund"
)
def refund_create(request: HttpRequest, payload: RefundIn):
    """Give back what was paid on an invoice (to credit or out), or pay out credit held."""
    _require(request, "billing.refund")
    invoice = client = None
    if payload.invoice_id is not None:
        invoice = _invoice_ref(request, payload.invoice_id)
    elif payload.client_id is not None:
        client = _client_ref(request, payload.client_id)
    else:
        raise ServiceError(_("Choose an invoice or a client."), field="invoice_id")
    amount = _parse_money(payload.amount, payload.currency, "amount")
    with _fields(invoice="invoice_id", client="client_id"):
        refund = services.refund_record(
            by=request.user,
            amount=amount,
            destination=payload.destination,
            reason=payload.reason,
            invoice=invoice,
            client=client,
            method=payload.method,
        )
    return Status(201, refund)


@router.get(
    "/credit-notes",
    response={200: list[CreditNoteOut], **problems(422)},
    summary="List credit notes",
)
@paginate(Page)
def credit_note_list(
    request: HttpRequest, client_id: Id | None = None, invoice_id: Id | None = None
):
    """Credit notes and write-offs you may see, newest first."""
    found = visible(CreditNote.objects.all(), request.user)
    if client_id:
        found = found.filter(client_id=client_id)
    if invoice_id:
        found = found.filter(invoice_id=invoice_id)
    return found.order_by("-id")


@router.post(
    "/credit-notes",
    response={201: CreditNoteOut, **problems(400, 403, 409, 422)},
    summary="Credit or write off an invoice",
)
def credit_note_create(request: HttpRequest, payload: CreditNoteIn):
    """Reduce an issued invoice; a credit note beyond what is owed becomes credit balance."""
    _require(request, "billing.refund")
    invoice = _invoice_ref(request, payload.invoice_id)
    amount = _parse_money(payload.amount, payload.currency, "amount")
    with _fields(invoice="invoice_id"):
        note = services.credit_note_create(
            by=request.user,
            invoice=invoice,
            amount=amount,
            reason=payload.reason,
            kind=payload.kind,
        )
    return Status(201, note)


# ----------------------------------------------------------------------------- accounts


class BalanceOut(Schema):
    """What a client owes on invoices, the credit it holds, and the difference."""

    owed: MoneyOut
    credit: MoneyOut
    balance: MoneyOut = Field(description="owed less credit: negative when in credit")


class CountedOut(Schema):
    """How many invoices, and their amount."""

    count: int
    amount: MoneyOut


class SummaryOut(Schema):
    """The client's billing at a glance, in its own currency."""

    currency: str
    paid: CountedOut
    unpaid: CountedOut
    cancelled: CountedOut
    refunded: CountedOut
    income: MoneyOut
    credit: MoneyOut
    owed: MoneyOut


class AccountOut(Schema):
    """A client's balances per currency, from the ledger, and its billing summary."""

    client_id: int
    balances: dict[str, BalanceOut]
    summary: SummaryOut


def _m(value: Money) -> dict:
    return _money(value.minor, value.currency)


@router.get(
    "/clients/{client_id}/balance",
    response={200: AccountOut, **problems(404, 422)},
    summary="A client's balance",
)
def client_balance(request: HttpRequest, client_id: Id):
    """Per currency: owed on invoices, credit held and the balance; and the summary."""
    client = client_get(request.user, client_id)
    balances = {
        currency: {
            "owed": _money(sums["receivable"], currency),
            "credit": _money(sums["credit"], currency),
            "balance": _money(sums["receivable"] - sums["credit"], currency),
        }
        for currency, sums in sorted(client_sums(history_ids(client)).items())
    }
    s = queries.billing_summary(client)
    return {
        "client_id": client.pk,
        "balances": balances,
        "summary": {
            "currency": s.currency,
            **{
                name: {"count": getattr(s, name)[0], "amount": _m(getattr(s, name)[1])}
                for name in ("paid", "unpaid", "cancelled", "refunded")
            },
            "income": _m(s.income),
            "credit": _m(s.credit),
            "owed": _m(s.owed),
        },
    }


class TopUpIn(Schema):
    """Credit the client pays in advance, invoiced now."""

    amount: AmountText
    currency: CurrencyText
    due_days: int = Field(7, ge=0, le=365, description="days the client has to pay")


@router.post(
    "/clients/{client_id}/credit-top-ups",
    response={201: InvoiceOut, **problems(400, 403, 404, 409, 422)},
    summary="Invoice a credit top-up",
)
def credit_top_up_create(request: HttpRequest, client_id: Id, payload: TopUpIn):
    """Issue an invoice whose payments go to the client's credit balance."""
    client = client_get(request.user, client_id)
    _require(request, "billing.invoice")
    amount = _parse_money(payload.amount, payload.currency, "amount")
    invoice = services.credit_top_up_invoice(
        by=request.user, client=client, amount=amount, due_days=payload.due_days
    )
    return Status(201, _invoice(request, invoice.pk))


class LedgerEntryOut(Schema):
    """One money movement, with the balance of its currency after it."""

    seq: int
    kind: str
    account: str
    amount: MoneyOut
    invoice_id: int | None
    invoice_number: str | None
    reference: str
    posted_at: dt.datetime
    running_balance: MoneyOut = Field(
        description="what the client owes in this currency after the entry (negative: credit)"
    )

    @staticmethod
    def resolve_amount(entry) -> dict:
        return _money(entry.amount_minor, entry.currency)

    @staticmethod
    def resolve_invoice_number(entry) -> str | None:
        return entry.invoice.number if entry.invoice_id else None

    @staticmethod
    def resolve_running_balance(entry) -> dict:
        return _money(entry.running_minor, entry.currency)


@router.get(
    "/clients/{client_id}/ledger",
    response={200: list[LedgerEntryOut], **problems(404, 422)},
    summary="A client's ledger",
)
@paginate(Page)
def client_ledger(request: HttpRequest, client_id: Id):
    """The client's ledger entries, oldest first, each with the running balance."""
    client = client_get(request.user, client_id)
    return (
        queries.client_ledger(client)
        .select_related("invoice")
        .annotate(
            running_minor=Window(
                Sum("amount_minor"), partition_by=[F("currency")], order_by=F("seq").asc()
            )
        )
        .order_by("seq")
    )


class BillingRunOut(Schema):
    """A billing run and its progress."""

    id: int
    run_date: dt.date
    bill_until: dt.date = Field(description="services due up to this day are invoiced")
    status: Literal["running", "done", "failed"]
    interrupted: bool = Field(description="stopped making progress without finishing")
    trigger: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    total_clients: int
    done_clients: int
    invoices: int
    held: int = Field(description="invoices kept as drafts for a person to check")
    errors: int
    rate: float = Field(description="invoices per second so far")
    failures: list[dict[str, Any]] = Field(description="clients not billed, with the reason")


def _run_out(request: HttpRequest, run) -> dict:
    failures = run.failures.filter(client__in=visible(Client.objects.all(), request.user))
    return {
        **{name: getattr(run, name) for name in (
            "id", "run_date", "bill_until", "status", "trigger", "started_at", "finished_at",
            "total_clients", "done_clients", "invoices", "held", "errors")},
        "interrupted": is_interrupted(run),
        "rate": rate(run),
        "failures": [{"client_id": f.client_id, "reason": f.reason} for f in failures[:500]],
    }  # fmt: skip


@router.post(
    "/billing-runs",
    response={202: BillingRunOut, **problems(400, 403)},
    summary="Start a billing run",
)
def billing_run_create(request: HttpRequest):
    """Invoice every service due within the days in advance; workers bill it in chunks."""
    _require(request, "billing.invoice")
    run = billing_run_request(by=request.user, trigger="api")
    run.refresh_from_db()
    return Status(202, _run_out(request, run))


@router.get(
    "/billing-runs/{run_id}",
    response={200: BillingRunOut, **problems(404, 422)},
    summary="A billing run's progress",
)
def billing_run_get(request: HttpRequest, run_id: Id):
    """Done and total clients, invoices, held invoices, errors and the rate."""
    run = BillingRun.objects.filter(pk=run_id).first()
    if run is None:
        raise Http404
    return _run_out(request, run)


class BankStatementOut(Schema):
    """An imported bank statement and what became of its lines."""

    id: int
    format: Literal["csv", "1c", "camt053"]
    account: str
    filename: str
    imported_at: dt.datetime
    lines: int
    posted: int = Field(description="payments matched exactly and posted")
    suspense: int = Field(description="payments waiting for a clerk")
    outgoing: int
    duplicates: int = Field(description="lines imported before, skipped")


class BankPaymentOut(Schema):
    """One bank statement line: posted, waiting in suspense, assigned or set aside."""

    id: int
    statement_id: int
    line_no: int
    external_id: str
    booked_on: dt.date
    amount: MoneyOut
    payer_name: str
    payer_tax_id: str
    payer_account: str
    purpose: str
    state: Literal["posted", "suspense", "assigned", "ignored", "outgoing"]
    reason: str
    invoice_id: int | None
    payment_id: int | None

    @staticmethod
    def resolve_amount(item) -> dict:
        return _money(item.amount_minor, item.currency)


@router.post(
    "/bank-statements",
    response={201: BankStatementOut, **problems(400, 403, 409, 422)},
    summary="Import a bank statement",
)
def bank_statement_import(request: HttpRequest, file: File[UploadedFile]):
    """CSV, 1C client-bank exchange or camt.053: exact matches are posted, the rest wait
    in suspense; lines imported before are skipped. A faulty file is refused whole."""
    _require(request, "billing.payment")
    if file.size and file.size > MAX_STATEMENT_BYTES:
        raise ServiceError(_("The file is too large."), field="file")
    return Status(
        201, statement_import(by=request.user, data=file.read(), filename=file.name or "")
    )


@router.get(
    "/bank-statements/{statement_id}",
    response={200: BankStatementOut, **problems(403, 404, 422)},
    summary="A bank statement",
)
def bank_statement_get(request: HttpRequest, statement_id: Id):
    """Counts of posted, waiting, outgoing and already imported lines."""
    _require(request, "billing.payment")
    return get_object_or_404(BankStatement, pk=statement_id)


@router.get(
    "/bank-payments",
    response={200: list[BankPaymentOut], **problems(403, 422)},
    summary="Bank payments",
)
@paginate(Page)
def bank_payment_list(
    request: HttpRequest,
    state: Literal["posted", "suspense", "assigned", "ignored", "outgoing"] | None = None,
    statement_id: Id | None = None,
):
    """Statement lines, oldest first; `state=suspense` is the clerks' worklist."""
    _require(request, "billing.payment")
    found = BankPayment.objects.order_by("booked_on", "id")
    if state:
        found = found.filter(state=state)
    if statement_id:
        found = found.filter(statement_id=statement_id)
    return found


class AssignIn(Schema):
    """What a waiting bank payment pays: an invoice, or a client's credit balance."""

    invoice_id: Id | None = None
    client_id: Id | None = None


@router.post(
    "/bank-payments/{item_id}/assign",
    response={200: BankPaymentOut, **problems(400, 403, 404, 409, 422)},
    summary="Assign a waiting bank payment",
)
def bank_payment_assign_api(request: HttpRequest, item_id: Id, payload: AssignIn):
    """Post it as a payment of the invoice, or to the client's credit balance."""
    _require(request, "billing.payment")
    item = get_object_or_404(BankPayment, pk=item_id)
    invoice = (
        get_visible_or_404(queries.invoices_for(request.user), request.user, pk=payload.invoice_id)
        if payload.invoice_id
        else None
    )
    client = client_get(request.user, payload.client_id) if payload.client_id else None
    return bank_payment_assign(by=request.user, item=item, invoice=invoice, client=client)


class IgnoreIn(Schema):
    """Why a line is not a client's payment."""

    reason: Reason


@router.post(
    "/bank-payments/{item_id}/ignore",
    response={200: BankPaymentOut, **problems(400, 403, 404, 409, 422)},
    summary="Set a waiting bank line aside",
)
def bank_payment_ignore_api(request: HttpRequest, item_id: Id, payload: IgnoreIn):
    """Not a client's payment (a bank fee, a refund…): it leaves the suspense list."""
    _require(request, "billing.payment")
    item = get_object_or_404(BankPayment, pk=item_id)
    return bank_payment_ignore(by=request.user, item=item, reason=payload.reason)


class CreditLimitIn(Schema):
    """A credit limit in one currency; no `limit` is unlimited."""

    limit: AmountText | None = None
    floor: AmountText | None = None
    fixed_thresholds: list[AmountText] = Field([], max_length=20)
    percent_thresholds: list[Annotated[int, Field(ge=1, le=100)]] = Field([], max_length=20)
    enforce: bool = True


class CreditLimitOut(Schema):
    """A credit limit with what the client owes against it."""

    currency: str
    limit: MoneyOut | None
    floor: MoneyOut
    fixed_thresholds: list[MoneyOut]
    percent_thresholds: list[int]
    thresholds: list[MoneyOut] = Field(description="every amount that warns, lowest first")
    enforce: bool
    owed: MoneyOut
    beyond_limit: MoneyOut = Field(description="the outstanding amount over the limit")


def _limit_out(view) -> dict:
    limit = view.limit
    return {
        "currency": limit.currency,
        "limit": None if view.unlimited else _money(limit.limit_minor, limit.currency),
        "floor": _money(limit.floor_minor, limit.currency),
        "fixed_thresholds": [_money(m, limit.currency) for m in limit.fixed_thresholds],
        "percent_thresholds": limit.percent_thresholds,
        "thresholds": [_money(m.minor, m.currency) for m in view.thresholds],
        "enforce": limit.enforce,
        "owed": _money(view.owed.minor, view.owed.currency),
        "beyond_limit": _money(view.beyond.minor, view.beyond.currency),
    }


@router.get(
    "/clients/{client_id}/credit-limits",
    response={200: list[CreditLimitOut], **problems(404, 422)},
    summary="A client's credit limits",
)
def credit_limit_list(request: HttpRequest, client_id: Id):
    """Per currency: limit, floor, thresholds, what is owed and what is beyond the limit."""
    return [_limit_out(view) for view in limits_of(client_get(request.user, client_id))]


@router.put(
    "/clients/{client_id}/credit-limits/{currency}",
    response={200: CreditLimitOut, **problems(400, 403, 404, 422)},
    summary="Set a client's credit limit in a currency",
)
def credit_limit_put(request: HttpRequest, client_id: Id, currency: CurrencyText,
                     payload: CreditLimitIn):  # fmt: skip
    """Orders and invoices that would pass an enforced limit are refused."""
    client = client_get(request.user, client_id)
    _require(request, "billing.refund")
    code = currency.upper()
    credit_limit_set(
        by=request.user,
        client=client,
        currency=code,
        limit=_parse_money(payload.limit, code, "limit") if payload.limit else None,
        floor=_parse_money(payload.floor, code, "floor") if payload.floor else None,
        fixed_thresholds=[
            _parse_money(a, code, f"fixed_thresholds.{i}")
            for i, a in enumerate(payload.fixed_thresholds)
        ],
        percent_thresholds=payload.percent_thresholds,
        enforce=payload.enforce,
    )
    return next(_limit_out(v) for v in limits_of(client) if v.limit.currency == code)


@router.delete(
    "/clients/{client_id}/credit-limits/{currency}",
    response={204: None, **problems(403, 404, 422)},
    summary="Remove a client's credit limit in a currency",
)
def credit_limit_delete(request: HttpRequest, client_id: Id, currency: CurrencyText):
    """No limit in that currency any more."""
    client = client_get(request.user, client_id)
    _require(request, "billing.refund")
    limit = get_object_or_404(client.credit_limits, currency=currency.upper())
    credit_limit_remove(by=request.user, limit=limit)
    return Status(204, None)
