"""Quotes and contracts over the API, through the same services and visibility as the pages.

A quote or contract out of the caller's sight is a 404 for reading and for every action; an
action the role does not allow is a 403; bad input is a 422 problem at the field; a refused
transition is a 409. Writes accept an Idempotency-Key header (the API's middleware).
"""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StringConstraints

from clientbase.catalog.models import Product
from clientbase.catalog.pricing import money_in
from clientbase.clients.queries import clients_for
from clientbase.core.api_base import Id, Page, Text, problems
from clientbase.core.errors import ServiceError
from clientbase.core.visibility import visible
from clientbase.sales import quote_queries as queries
from clientbase.sales import quote_services as services
from clientbase.sales.models import Contract, ContractTemplate, Deal, Lead, Quote, QuoteLine

router = Router()

WORK = "sales.work"
Search = Annotated[Text, StringConstraints(max_length=100)]
OwnerFilter = Annotated[str, StringConstraints(pattern=r"^(me|[1-9][0-9]{0,17})$")]
StageName = Literal["draft", "negotiation", "sent", "on_hold", "accepted", "lost", "cancelled"]


def _require(request: HttpRequest, action: str) -> None:
    if not request.user.has_perm(action):
        raise PermissionDenied


def _quote(request: HttpRequest, quote_id: int) -> Quote:
    return queries.quote_get(request.user, quote_id)


def _workable(request: HttpRequest, quote_id: int) -> Quote:
    quote = _quote(request, quote_id)
    _require(request, WORK)
    return quote


def _contract(request: HttpRequest, contract_id: int) -> Contract:
    return queries.contract_get(request.user, contract_id)


def _ref(model, request: HttpRequest, pk: int | None, field: str):
    if pk is None:
        return None
    base = clients_for(request.user) if model == "client" else visible(model.objects, request.user)
    record = base.filter(pk=pk).first()
    if record is None:
        raise ServiceError(_("Nothing you may see has this id."), field=field)
    return record


# ----------------------------------------------------------------------------- schemas


class QuoteLineOut(Schema):
    """A quote line, priced as an invoice line (amounts in minor units)."""

    id: int
    position: int
    product_id: int | None
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    taxable: bool
    tax_rate: Decimal
    net_minor: int
    tax_minor: int


class QuoteOut(Schema):
    """A quote as lists show it; amounts are integers in the currency's minor unit."""

    id: int
    number: str
    title: str
    client_id: int | None
    lead_id: int | None
    deal_id: int | None
    owner_id: int | None
    currency: str
    issued_on: dt.date
    valid_until: dt.date
    stage: str
    approval: str
    approval_note: str
    lost_reason: str
    subtotal_minor: int
    tax_minor: int
    total_minor: int
    invoice_id: int | None
    contract_id: int | None
    sent_at: dt.datetime | None
    version: int


class QuoteDetailOut(QuoteOut):
    """A quote with its lines and notes."""

    notes: str
    needs_approval: bool
    lines: list[QuoteLineOut]

    @staticmethod
    def resolve_needs_approval(quote) -> bool:
        return services.needs_approval(quote)

    @staticmethod
    def resolve_lines(quote) -> list:
        return list(quote.lines.all())


class QuoteLineIn(Schema):
    """A line: from the catalogue (`product_id`: its name and price unless given) or free."""

    product_id: Id | None = None
    description: Text = Field("", max_length=500)
    quantity: Decimal = Field(Decimal(1), gt=0, max_digits=12, decimal_places=3)
    unit_price: Decimal | None = Field(None, ge=0, max_digits=18, decimal_places=4)
    discount_percent: Decimal = Field(Decimal(0), ge=0, le=100, max_digits=5, decimal_places=2)
    taxable: bool = True
    tax_rate: Decimal | None = Field(None, ge=0, le=100, description="none: the client's rate")


class QuoteIn(Schema):
    """A new draft quote for a client, a lead or a deal you may see."""

    client_id: Id | None = None
    lead_id: Id | None = None
    deal_id: Id | None = None
    title: Text = Field("", max_length=200)
    issued_on: dt.date | None = None
    valid_until: dt.date | None = Field(None, description="default: 30 days after the date")
    notes: Text = Field("", max_length=10_000)
    lines: list[QuoteLineIn] = Field([], max_length=500)


class QuotePatch(Schema):
    """Fields to change while the quote is editable; `version` refuses a stale write (409)."""

    title: Text | None = Field(None, max_length=200)
    issued_on: dt.date | None = None
    valid_until: dt.date | None = None
    notes: Text | None = Field(None, max_length=10_000)
    version: int | None = None


class QuoteStageIn(Schema):
    """The stage to move to; a lost quote says why."""

    stage: StageName
    reason: Text = Field("", max_length=200)


class ApprovalNoteIn(Schema):
    """A note with an approval request or decision (required to reject)."""

    note: Text = Field("", max_length=500)


class SendIn(Schema):
    """Where to mail the quote: the client's (or lead's) address by default."""

    to: Text = Field("", max_length=254)


class QuoteConvertIn(Schema):
    """What the quote becomes."""

    to: Literal["invoice", "contract"]


class ContractOut(Schema):
    """A contract; `value_minor` in the currency's minor unit."""

    id: int
    number: str
    title: str
    client_id: int
    deal_id: int | None
    template_id: int | None
    owner_id: int | None
    starts_on: dt.date
    ends_on: dt.date | None
    value_minor: int
    currency: str
    status: str
    renewal_of_id: int | None
    terms: str
    version: int


class ContractIn(Schema):
    """A new draft contract with a client you may see; `value` in major units ("1200.00")."""

    client_id: Id
    deal_id: Id | None = None
    template_id: Id | None = None
    title: Text = Field(min_length=1, max_length=200)
    starts_on: dt.date
    ends_on: dt.date | None = None
    value: Decimal = Field(Decimal(0), ge=0)
    terms: Text = Field("", max_length=20_000)


class ContractPatch(Schema):
    """Fields to change on a draft or active contract; `status` activates or terminates."""

    title: Text | None = Field(None, max_length=200)
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None
    value: Decimal | None = Field(None, ge=0)
    template_id: Id | None = None
    terms: Text | None = Field(None, max_length=20_000)
    status: Literal["active", "terminated"] | None = None
    version: int | None = None


class RenewIn(Schema):
    """The new term: by default as long as the old one, at the same value."""

    ends_on: dt.date | None = None
    value: Decimal | None = Field(None, ge=0)


# ----------------------------------------------------------------------------- quotes


def _line_spec(
    request: HttpRequest, quote_currency: str, line: QuoteLineIn
) -> services.QuoteLineSpec:
    if line.product_id is not None:
        product = Product.objects.filter(pk=line.product_id, active=True).first()
        if product is None:
            raise ServiceError(_("No product on sale has this id."), field="product_id")
        spec = services.catalogue_line(product, quote_currency, line.quantity)
        spec.description = line.description or spec.description
        if line.unit_price is not None:
            spec.unit_price = line.unit_price
        spec.taxable = line.taxable and spec.taxable
    else:
        if line.unit_price is None:
            raise ServiceError(_("Give the unit price or a product."), field="unit_price")
        spec = services.QuoteLineSpec(
            description=line.description, unit_price=line.unit_price, quantity=line.quantity
        )
        spec.taxable = line.taxable
    spec.discount_percent = line.discount_percent
    spec.tax_rate = line.tax_rate
    return spec


@router.get("/quotes", response={200: list[QuoteOut], **problems(422)}, summary="List quotes")
@paginate(Page)
def quote_list(
    request: HttpRequest,
    stage: Literal[tuple(Quote.Stage.values)] | None = None,
    approval: Literal[tuple(Quote.Approval.values)] | None = None,
    owner: OwnerFilter | None = None,
    client: Id | None = None,
    lead: Id | None = None,
    deal: Id | None = None,
    q: Search = "",
):
    """Quotes you may see, newest first; `owner` takes `me` or a user id."""
    filters = queries.QuoteFilters(
        stage=stage or "",
        approval=approval or "",
        owner=owner or "",
        client=client,
        lead=lead,
        deal=deal,
        q=q,
    )
    return queries.quote_list(request.user, filters)


@router.post(
    "/quotes",
    response={201: QuoteDetailOut, **problems(400, 403, 409, 422)},
    summary="Make a quote",
)
def quote_create(request: HttpRequest, payload: QuoteIn):
    """A draft quote, numbered, in the currency of its client, lead or deal."""
    _require(request, WORK)
    client = _ref("client", request, payload.client_id, "client_id")
    lead = _ref(Lead, request, payload.lead_id, "lead_id")
    deal = _ref(Deal, request, payload.deal_id, "deal_id")
    currency = (
        (deal.currency if deal else "")
        or (client.currency if client else "")
        or (lead.currency if lead else "")
    )
    quote = services.quote_create(
        by=request.user,
        client=client,
        lead=lead,
        deal=deal,
        lines=[_line_spec(request, currency, line) for line in payload.lines],
        issued_on=payload.issued_on,
        valid_until=payload.valid_until,
        title=payload.title,
        notes=payload.notes,
    )
    return Status(201, _quote(request, quote.pk))


@router.get(
    "/quotes/{quote_id}",
    response={200: QuoteDetailOut, **problems(404, 422)},
    summary="Get a quote",
)
def quote_get(request: HttpRequest, quote_id: Id):
    """A quote you may see, with its lines."""
    return _quote(request, quote_id)


@router.patch(
    "/quotes/{quote_id}",
    response={200: QuoteDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Change a quote",
)
def quote_update(request: HttpRequest, quote_id: Id, payload: QuotePatch):
    """Change the title, dates or notes while the quote is a draft, in negotiation or on hold."""
    quote = _workable(request, quote_id)
    services.quote_update(by=request.user, quote=quote, **payload.dict(exclude_unset=True))
    return _quote(request, quote_id)


@router.post(
    "/quotes/{quote_id}/lines",
    response={201: QuoteDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Add a line",
)
def quote_line_add(request: HttpRequest, quote_id: Id, payload: QuoteLineIn):
    """Add a line from the catalogue or a free one; the totals follow."""
    quote = _workable(request, quote_id)
    spec = _line_spec(request, quote.currency, payload)
    services.quote_line_add(by=request.user, quote=quote, line=spec)
    return Status(201, _quote(request, quote_id))


def _line(quote: Quote, line_id: int) -> QuoteLine:
    line = QuoteLine.objects.filter(quote=quote, pk=line_id).select_related("quote").first()
    if line is None:
        raise Http404
    return line


@router.put(
    "/quotes/{quote_id}/lines/{line_id}",
    response={200: QuoteDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Rewrite a line",
)
def quote_line_update(request: HttpRequest, quote_id: Id, line_id: Id, payload: QuoteLineIn):
    """Replace a line of an editable quote."""
    quote = _workable(request, quote_id)
    line = _line(quote, line_id)
    spec = _line_spec(request, quote.currency, payload)
    services.quote_line_update(by=request.user, line=line, spec=spec)
    return _quote(request, quote_id)


@router.delete(
    "/quotes/{quote_id}/lines/{line_id}",
    response={200: QuoteDetailOut, **problems(403, 404, 409, 422)},
    summary="Remove a line",
)
def quote_line_delete(request: HttpRequest, quote_id: Id, line_id: Id):
    """Remove a line of an editable quote."""
    quote = _workable(request, quote_id)
    services.quote_line_delete(by=request.user, line=_line(quote, line_id))
    return _quote(request, quote_id)


@router.post(
    "/quotes/{quote_id}/stage",
    response={200: QuoteDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Move a quote to another stage",
)
def quote_stage(request: HttpRequest, quote_id: Id, payload: QuoteStageIn):
    """Allowed moves: draft → negotiation, sent, on hold, lost, cancelled; sent → accepted…;
    a refused move is a 409 that says why. Sent with discounts above the threshold needs
    approval first."""
    quote = _workable(request, quote_id)
    services.quote_set_stage(
        by=request.user, quote=quote, stage=payload.stage, reason=payload.reason
    )
    return _quote(request, quote_id)


@router.post(
    "/quotes/{quote_id}/approval/{action}",
    response={200: QuoteDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Ask for, approve or reject approval",
)
def quote_approval(
    request: HttpRequest,
    quote_id: Id,
    action: Literal["request", "approve", "reject"],
    payload: ApprovalNoteIn,
):
    """`request` needs sales.work; `approve` and `reject` need sales.approve (a rejection
    says why in `note`)."""
    quote = _workable(request, quote_id)
    if action == "request":
        services.quote_request_approval(by=request.user, quote=quote, note=payload.note)
    else:
        _require(request, "sales.approve")
        services.quote_decide(
            by=request.user, quote=quote, approve=action == "approve", note=payload.note
        )
    return _quote(request, quote_id)


@router.post(
    "/quotes/{quote_id}/send",
    response={200: QuoteDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Email a quote",
)
def quote_send(request: HttpRequest, quote_id: Id, payload: SendIn):
    """Mail the quote with its PDF; it becomes sent and a quote email is logged."""
    quote = _workable(request, quote_id)
    services.quote_send(by=request.user, quote=quote, to=payload.to)
    return _quote(request, quote_id)


@router.post(
    "/quotes/{quote_id}/convert",
    response={200: QuoteDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Convert a quote to an invoice or a contract",
)
def quote_convert(request: HttpRequest, quote_id: Id, payload: QuoteConvertIn):
    """Copy an accepted quote's lines into a draft invoice or a contract, linked both ways;
    run twice, the first result is returned. A quote for a lead not yet converted is a 422.
    The invoice is a draft: sales.work suffices; issuing it stays with billing."""
    quote = _workable(request, quote_id)
    services.quote_convert(by=request.user, quote=quote, to=payload.to)
    return _quote(request, quote_id)


# ----------------------------------------------------------------------------- contracts


@router.get(
    "/contracts", response={200: list[ContractOut], **problems(422)}, summary="List contracts"
)
@paginate(Page)
def contract_list(
    request: HttpRequest,
    status: Literal[tuple(Contract.Status.values)] | None = None,
    client: Id | None = None,
    renew: bool = False,
    q: Search = "",
):
    """Contracts you may see, latest start first; `renew` keeps active ones ending this
    month."""
    filters = queries.ContractFilters(status=status or "", client=client, renew=renew, q=q)
    return queries.contract_list(request.user, filters)


def _template(template_id: int | None) -> ContractTemplate | None:
    if template_id is None:
        return None
    template = ContractTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise ServiceError(_("No contract template has this id."), field="template_id")
    return template


@router.post(
    "/contracts",
    response={201: ContractOut, **problems(400, 403, 409, 422)},
    summary="Draw up a contract",
)
def contract_create(request: HttpRequest, payload: ContractIn):
    """A draft contract with a client, in the client's currency."""
    _require(request, WORK)
    client = _ref("client", request, payload.client_id, "client_id")
    contract = services.contract_create(
        by=request.user,
        client=client,
        title=payload.title,
        starts_on=payload.starts_on,
        ends_on=payload.ends_on,
        value=money_in(payload.value, client.currency, field="value"),
        deal=_ref(Deal, request, payload.deal_id, "deal_id"),
        template=_template(payload.template_id),
        terms=payload.terms,
    )
    return Status(201, _contract(request, contract.pk))


@router.get(
    "/contracts/{contract_id}",
    response={200: ContractOut, **problems(404, 422)},
    summary="Get a contract",
)
def contract_get(request: HttpRequest, contract_id: Id):
    """A contract you may see."""
    return _contract(request, contract_id)


@router.patch(
    "/contracts/{contract_id}",
    response={200: ContractOut, **problems(400, 403, 404, 409, 422)},
    summary="Change a contract",
)
def contract_update(request: HttpRequest, contract_id: Id, payload: ContractPatch):
    """Change a draft or active contract; `status` active signs it, terminated ends it."""
    contract = _contract(request, contract_id)
    _require(request, WORK)
    changes = payload.dict(exclude_unset=True)
    status = changes.pop("status", None)
    if "value" in changes and changes["value"] is not None:
        changes["value"] = money_in(changes["value"], contract.currency, field="value")
    if "template_id" in changes:
        changes["template"] = _template(changes.pop("template_id"))
    if any(v is not None for k, v in changes.items() if k != "version"):
        contract = services.contract_update(by=request.user, contract=contract, **changes)
    if status == "active":
        services.contract_activate(by=request.user, contract=contract)
    elif status == "terminated":
        services.contract_terminate(by=request.user, contract=contract)
    return _contract(request, contract_id)


@router.post(
    "/contracts/{contract_id}/renew",
    response={201: ContractOut, **problems(400, 403, 404, 409, 422)},
    summary="Renew a contract",
)
def contract_renew(request: HttpRequest, contract_id: Id, payload: RenewIn):
    """A new active contract for the next term (returned), linked by `renewal_of_id`; run
    twice, the same renewal."""
    contract = _contract(request, contract_id)
    _require(request, WORK)
    value = (
        money_in(payload.value, contract.currency, field="value")
        if payload.value is not None
        else None
    )
    renewal = services.contract_renew(
        by=request.user, contract=contract, ends_on=payload.ends_on, value=value
    )
    return Status(201, _contract(request, renewal.pk))
