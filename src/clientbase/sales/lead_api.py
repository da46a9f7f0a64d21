"""API of the sales module: lead area (/leads, their contacts and conversion).

A lead out of the caller's sight is a 404 for reading and for every action; an action the
role does not allow is a 403; bad input is a 422 problem at the field.
"""

import datetime as dt
from typing import Annotated, Literal

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StringConstraints

from clientbase.accounts.models import User
from clientbase.clients.queries import clients_for
from clientbase.core.api_base import Id, Page, Text, problems
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.money import Money
from clientbase.sales import lead_queries as queries
from clientbase.sales import lead_services as services
from clientbase.sales.models import Lead

router = Router(tags=["leads"])

WORK = "sales.work"


def _require(request: HttpRequest, action: str) -> None:
    if not request.user.has_perm(action):
        raise PermissionDenied


def _lead(request: HttpRequest, lead_id: int) -> Lead:
    lead = queries.leads_for(request.user).filter(pk=lead_id).first()
    if lead is None:
        raise Http404
    return lead


def _workable(request: HttpRequest, lead_id: int) -> Lead:
    lead = _lead(request, lead_id)
    _require(request, WORK)
    return lead


def _owner(owner_id: int | None) -> User | None:
    if owner_id is None:
        return None
    owner = User.objects.filter(pk=owner_id, is_active=True).first()
    if owner is None:
        raise ServiceError(_("No such active user."), field="owner_id")
    return owner


def _renamed(refused: ServiceError) -> ServiceError:
    renames = {"owner": "owner_id", "org_unit": "owner_id", "potential_minor": "potential_minor"}
    errors = {renames.get(k, k): v for k, v in refused.message_dict.items()}
    return type(refused)(errors=errors)


# ----------------------------------------------------------------------------- schemas

Short = Annotated[Text, StringConstraints(max_length=200)]
Kind = Literal["individual", "company"]


class LeadContactOut(Schema):
    """Another person at the lead's company."""

    id: int
    name: str
    position_title: str
    email: str
    phone: str


class LeadOut(Schema):
    """A lead as lists show it."""

    id: int
    number: str
    kind: str
    civility: str
    name: str
    company: str
    position_title: str
    email: str
    phone: str = Field(description="E.164")
    tax_id: str
    street: str
    postcode: str
    city: str
    region: str
    country: str
    language: str
    source: str
    campaign: str
    potential_minor: int = Field(description="in minor units of `currency`")
    currency: str
    needs: str
    status: str
    stage_id: int
    stage: str = Field(alias="stage.name")
    dead_reason: str
    next_step: str
    next_step_on: dt.date | None
    owner_id: int | None
    client_id: int | None
    converted_at: dt.datetime | None
    created_at: dt.datetime
    version: int


class LeadDetailOut(LeadOut):
    """A lead with its contacts."""

    contacts: list[LeadContactOut]

    @staticmethod
    def resolve_contacts(lead) -> list:
        return list(lead.contacts.all())


class LeadIn(Schema):
    """A new lead; without `owner_id` it is yours, with `owner_id: null` it is distributed."""

    kind: Kind = "company"
    civility: Annotated[Text, StringConstraints(max_length=20)] = ""
    name: Short
    company: Short = ""
    position_title: Annotated[Text, StringConstraints(max_length=100)] = ""
    email: Annotated[Text, StringConstraints(max_length=254)] = ""
    phone: Annotated[Text, StringConstraints(max_length=32)] = ""
    tax_id: Annotated[Text, StringConstraints(max_length=32)] = ""
    street: Short = ""
    postcode: Annotated[Text, StringConstraints(max_length=20)] = ""
    city: Annotated[Text, StringConstraints(max_length=100)] = ""
    region: Annotated[Text, StringConstraints(max_length=100)] = ""
    country: Annotated[Text, StringConstraints(max_length=2)] = ""
    language: Literal["en", "ru", "fr", "vi"] = "en"
    source: Annotated[Text, StringConstraints(max_length=100)] = ""
    campaign: Annotated[Text, StringConstraints(max_length=100)] = ""
    potential_minor: Annotated[int, Field(ge=0, le=10**15)] = 0
    currency: Annotated[Text, StringConstraints(min_length=3, max_length=3)] | None = None
    needs: Annotated[Text, StringConstraints(max_length=20_000)] = ""
    next_step: Short = ""
    next_step_on: dt.date | None = None
    owner_id: Id | None = None


class LeadPatch(Schema):
    """The fields to change; `version` guards against overwriting someone's change."""

    kind: Kind | None = None
    civility: Annotated[Text, StringConstraints(max_length=20)] | None = None
    name: Short | None = None
    company: Short | None = None
    position_title: Annotated[Text, StringConstraints(max_length=100)] | None = None
    email: Annotated[Text, StringConstraints(max_length=254)] | None = None
    phone: Annotated[Text, StringConstraints(max_length=32)] | None = None
    tax_id: Annotated[Text, StringConstraints(max_length=32)] | None = None
    street: Short | None = None
    postcode: Annotated[Text, StringConstraints(max_length=20)] | None = None
    city: Annotated[Text, StringConstraints(max_length=100)] | None = None
    region: Annotated[Text, StringConstraints(max_length=100)] | None = None
    country: Annotated[Text, StringConstraints(max_length=2)] | None = None
    language: Literal["en", "ru", "fr", "vi"] | None = None
    source: Annotated[Text, StringConstraints(max_length=100)] | None = None
    campaign: Annotated[Text, StringConstraints(max_length=100)] | None = None
    potential_minor: Annotated[int, Field(ge=0, le=10**15)] | None = None
    currency: Annotated[Text, StringConstraints(min_length=3, max_length=3)] | None = None
    needs: Annotated[Text, StringConstraints(max_length=20_000)] | None = None
    next_step: Short | None = None
    next_step_on: dt.date | None = None
    owner_id: Id | None = None
    version: int | None = None


class LeadContactIn(Schema):
    """A person to add to the lead."""

    name: Short
    position_title: Annotated[Text, StringConstraints(max_length=100)] = ""
    email: Annotated[Text, StringConstraints(max_length=254)] = ""
    phone: Annotated[Text, StringConstraints(max_length=32)] = ""


class LeadConvertIn(Schema):
    """How to convert: open a deal (its name and value), or attach to an existing client."""

    create_deal: bool = True
    deal_name: Short = ""
    deal_value_minor: Annotated[int, Field(ge=0, le=10**15)] | None = None
    existing_client_id: Id | None = None


class ConvertOut(Schema):
    """What the conversion made; `created` is false when the lead was converted before."""

    lead_id: int
    client_id: int
    client_number: str
    deal_id: int | None
    created: bool


# ----------------------------------------------------------------------------- endpoints


@router.get("/leads", response={200: list[LeadOut], **problems(422)}, summary="List leads")
@paginate(Page)
def lead_list(
    request: HttpRequest,
    status: Literal["open", "new", "in_progress", "appointment", "customer", "dead"] | None = None,
    owner: Annotated[str, StringConstraints(pattern=r"^(me|none|[1-9][0-9]{0,17})$")] | None = None,
    source: Annotated[Text, StringConstraints(max_length=100)] = "",
    campaign: Annotated[Text, StringConstraints(max_length=100)] = "",
    q: Annotated[Text, StringConstraints(max_length=200)] = "",
):
    """Leads you may see, newest first; `owner` takes `me`, `none` or a user id."""
    filters = queries.LeadFilters(
        status=status or "", owner=owner or "", source=source, campaign=campaign, q=q
    )
    return queries.lead_list(request.user, filters)


@router.post(
    "/leads", response={201: LeadDetailOut, **problems(400, 403, 422)}, summary="Create a lead"
)
def lead_create(request: HttpRequest, payload: LeadIn):
    """A new lead at the first stage; duplicates by email among open leads and clients are refused."""
    _require(request, WORK)
    fields = payload.dict(exclude_unset=True)
    owner_given = "owner_id" in fields
    owner_id = fields.pop("owner_id", None)
    if fields.get("currency") is None:
        fields.pop("currency", None)
    else:
        fields["currency"] = fields["currency"].upper()
    if owner_given:
        fields["owner"] = _owner(owner_id)
    try:
        lead = services.lead_create(by=request.user, **fields)
    except ServiceError as refused:
        raise _renamed(refused) from refused
    return Status(201, Lead.objects.select_related("stage").get(pk=lead.pk))


@router.get(
    "/leads/{lead_id}", response={200: LeadDetailOut, **problems(404, 422)}, summary="Get a lead"
)
def lead_get(request: HttpRequest, lead_id: Id):
    """A lead you may see, with its contacts."""
    return _lead(request, lead_id)


@router.patch(
    "/leads/{lead_id}",
    response={200: LeadDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Change a lead",
)
def lead_update(request: HttpRequest, lead_id: Id, payload: LeadPatch):
    """Change the given fields; a stale `version` is a 409."""
    lead = _workable(request, lead_id)
    fields = payload.dict(exclude_unset=True)
    version = fields.pop("version", None)
    if "owner_id" in fields:
        fields["owner"] = _owner(fields.pop("owner_id"))
    for name in [k for k, v in fields.items() if v is None and k not in ("owner", "next_step_on")]:
        fields.pop(name)
    if "currency" in fields:
        fields["currency"] = fields["currency"].upper()
    try:
        services.lead_update(by=request.user, lead=lead, version=version, **fields)
    except ServiceError as refused:
        raise _renamed(refused) from refused
    return _lead(request, lead_id)


@router.post(
    "/leads/{lead_id}/convert",
    response={200: ConvertOut, **problems(400, 403, 404, 409, 422)},
    summary="Convert a lead into a client",
)
def lead_convert(request: HttpRequest, lead_id: Id, payload: LeadConvertIn):
    """Make the lead a client (and a deal); run twice it answers with the first conversion.

    If a client already has the lead's email the answer is a 409 naming it: send
    `existing_client_id` to attach the lead to that client instead.
    """
    lead = _workable(request, lead_id)
    existing = None
    if payload.existing_client_id is not None:
        existing = clients_for(request.user).filter(pk=payload.existing_client_id).first()
        if existing is None:
            raise ServiceError(_("No client you may see has this id."), field="existing_client_id")
    value = (
        Money(payload.deal_value_minor, lead.currency)
        if payload.deal_value_minor is not None
        else None
    )
    try:
        result = services.lead_convert(
            by=request.user,
            lead=lead,
            create_deal=payload.create_deal,
            deal_name=payload.deal_name,
            deal_value=value,
            existing_client=existing,
        )
    except services.ClientExists as clash:
        raise ConflictError(
            errors={"existing_client_id": [f"{clash.messages[0]} (id {clash.client.pk})"]}
        ) from clash
    return {
        "lead_id": result.lead.pk,
        "client_id": result.client.pk,
        "client_number": result.client.number,
        "deal_id": result.deal.pk if result.deal else None,
        "created": result.created,
    }


@router.get(
    "/leads/{lead_id}/contacts",
    response={200: list[LeadContactOut], **problems(404, 422)},
    summary="List a lead's contacts",
)
def lead_contacts(request: HttpRequest, lead_id: Id):
    """The other people at a lead's company."""
    return list(_lead(request, lead_id).contacts.all())


@router.post(
    "/leads/{lead_id}/contacts",
    response={201: LeadContactOut, **problems(400, 403, 404, 422)},
    summary="Add a contact to a lead",
)
def lead_contact_add(request: HttpRequest, lead_id: Id, payload: LeadContactIn):
    """Add a person; email and phone are checked and normalised."""
    lead = _workable(request, lead_id)
    return Status(201, services.lead_contact_add(by=request.user, lead=lead, **payload.dict()))


@router.delete(
    "/leads/{lead_id}/contacts/{contact_id}",
    response={204: None, **problems(403, 404, 422)},
    summary="Remove a contact from a lead",
)
def lead_contact_remove(request: HttpRequest, lead_id: Id, contact_id: Id):
    """Remove a person from the lead."""
    lead = _workable(request, lead_id)
    contact = lead.contacts.filter(pk=contact_id).first()
    if contact is None:
        raise Http404
    services.lead_contact_remove(by=request.user, contact=contact)
    return Status(204, None)
