"""Clients over the API: the same services and visibility as the UI."""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, File, Form, Query, Router, Schema, Status, UploadedFile
from ninja.pagination import paginate
from pydantic import StringConstraints

from clientbase.accounts.models import OrgUnit, User
from clientbase.clients import queries, search, services
from clientbase.clients.models import (
    Address,
    Client,
    ClientGroup,
    Contact,
    ContactPhone,
    DeferredAction,
)
from clientbase.core import customfields, documents
from clientbase.core.api_base import Id, Page, Text, problems
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.models import EventCategory

router = Router()

Reason = Annotated[Text, StringConstraints(min_length=1, max_length=500)]


def _require(request: HttpRequest, action: str) -> None:
    """A 403 problem unless the caller's role allows the action."""
    if not request.user.has_perm(action):
        raise PermissionDenied


class ClientOut(Schema):
    """A client as the API shows it."""

    id: int
    number: str
    kind: str
    name: str
    email: str
    phone: str
    tax_id: str
    street: str
    postcode: str
    city: str
    country: str
    currency: str
    language: str
    status: str
    status_since: dt.date | None
    version: int
    owner_id: int | None
    org_unit_id: int
    created_at: dt.datetime
    first_name: str
    last_name: str
    company_name: str
    kpp: str
    national_id: str
    payment_method: str
    group_id: int | None
    tax_exempt: bool
    separate_invoices: bool
    billing_day: int | None = Field(description="co-terming: periods start on this day (1-28)")
    auto_apply_credit: bool
    suspend_exempt_until: dt.date | None
    late_fee_exempt: bool
    no_overdue_notices: bool
    no_card_autopay: bool
    sales_manager_id: int | None
    source: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    referred_by_id: int | None
    tags: str
    consent_email: bool
    consent_sms: bool
    consent_api: bool
    preferred_channel: str
    notices_opted_out: list[str]
    parent_id: int | None
    bill_to_parent: bool
    custom_fields: dict[str, Any] = Field(
        description="custom field values by field code; secret ones masked unless allowed"
    )

    @staticmethod
    def resolve_custom_fields(client, context) -> dict[str, Any]:
        if not client.custom:
            return {}
        request = context["request"]
        # Read once per request, not once per client of a list.
        if not hasattr(request, "custom_fields_by_code"):
            request.custom_fields_by_code = {f.code: f for f in customfields.fields_for()}
        fields = request.custom_fields_by_code
        shown = {}
        for code, value in client.custom.items():
            if code in fields:
                may_see = fields[code].type != "secret" or request.user.has_perm(
                    "clients.view_secrets"
                )
                shown[code] = customfields.shown_value(fields[code], value, may_see_secrets=may_see)
        return shown


class ClientIn(Schema):
    """A new client."""

    kind: Client.Kind = Client.Kind.COMPANY
    name: Text = Field("", max_length=200, description="for a company, or a person's full name")
    email: Text = Field(min_length=3, max_length=254)
    phone: Text = Field("", max_length=32)
    tax_id: Text = Field("", max_length=32)
    street: Text = Field("", max_length=200)
    postcode: Text = Field("", max_length=20)
    city: Text = Field("", max_length=100)
    country: Text = Field("", max_length=2)
    currency: Text | None = Field(None, min_length=3, max_length=3)
    language: Text = Field("en", max_length=8)
    owner_id: Id | None = None
    org_unit_id: Id | None = None
    first_name: Text = Field("", max_length=100)
    last_name: Text = Field("", max_length=100)
    company_name: Text = Field("", max_length=200)
    kpp: Text = Field("", max_length=9)
    national_id: Text = Field("", max_length=32)
    payment_method: Client.PaymentMethod = Client.PaymentMethod.BANK_TRANSFER
    group_id: Id | None = None
    tax_exempt: bool = False
    separate_invoices: bool = False
    billing_day: int | None = Field(None, ge=1, le=28)
    auto_apply_credit: bool = True
    suspend_exempt_until: dt.date | None = None
    late_fee_exempt: bool = False
    no_overdue_notices: bool = False
    no_card_autopay: bool = False
    sales_manager_id: Id | None = None
    source: Text = Field("", max_length=100)
    utm_source: Text = Field("", max_length=100)
    utm_medium: Text = Field("", max_length=100)
    utm_campaign: Text = Field("", max_length=100)
    referred_by_id: Id | None = None
    tags: Text = Field("", max_length=200)
    consent_email: bool = False
    consent_sms: bool = False
    consent_api: bool = False
    preferred_channel: Client.Channel = Client.Channel.EMAIL
    notices_opted_out: list[Client.Notice] = Field(default_factory=list)
    parent_id: Id | None = Field(None, description="the parent company of a member company")
    bill_to_parent: bool = False
    custom_fields: dict[str, Any] = Field(
        default_factory=dict, description="custom field values by field code"
    )


class ClientPatch(Schema):
    """Fields to change on a client; those left out stay as they are.

    Send the `version` you read to be refused (409) if someone changed the client since.
    """

    version: int | None = Field(None, ge=1)
    kind: Client.Kind | None = None
    name: Text | None = Field(None, min_length=1, max_length=200)
    email: Text | None = Field(None, min_length=3, max_length=254)
    phone: Text | None = Field(None, max_length=32)
    tax_id: Text | None = Field(None, max_length=32)
    street: Text | None = Field(None, max_length=200)
    postcode: Text | None = Field(None, max_length=20)
    city: Text | None = Field(None, max_length=100)
    country: Text | None = Field(None, max_length=2)
    currency: Text | None = Field(None, min_length=3, max_length=3)
    language: Text | None = Field(None, max_length=8)
    first_name: Text | None = Field(None, max_length=100)
    last_name: Text | None = Field(None, max_length=100)
    company_name: Text | None = Field(None, max_length=200)
    kpp: Text | None = Field(None, max_length=9)
    national_id: Text | None = Field(None, max_length=32)
    payment_method: Client.PaymentMethod | None = None
    group_id: Id | None = None
    tax_exempt: bool | None = None
    separate_invoices: bool | None = None
    billing_day: int | None = Field(None, ge=1, le=28)
    auto_apply_credit: bool | None = None
    suspend_exempt_until: dt.date | None = None
    late_fee_exempt: bool | None = None
    no_overdue_notices: bool | None = None
    no_card_autopay: bool | None = None
    sales_manager_id: Id | None = None
    source: Text | None = Field(None, max_length=100)
    utm_source: Text | None = Field(None, max_length=100)
    utm_medium: Text | None = Field(None, max_length=100)
    utm_campaign: Text | None = Field(None, max_length=100)
    referred_by_id: Id | None = None
    tags: Text | None = Field(None, max_length=200)
    consent_email: bool | None = None
    consent_sms: bool | None = None
    consent_api: bool | None = None
    preferred_channel: Client.Channel | None = None
    notices_opted_out: list[Client.Notice] | None = None
    parent_id: Id | None = None
    bill_to_parent: bool | None = None
    custom_fields: dict[str, Any] | None = Field(
        None, description="values to change by field code; an empty string clears one"
    )


# The services name the related rows; the API names their ids.
API_FIELDS = {
    "owner": "owner_id",
    "org_unit": "org_unit_id",
    "sales_manager": "sales_manager_id",
    "group": "group_id",
    "referred_by": "referred_by_id",
    "parent": "parent_id",
}


def _api_field(field: str) -> str:
    if field.startswith("custom."):
        return "custom_fields." + field.removeprefix("custom.")
    return API_FIELDS.get(field, field)


def _at_api_fields(refused: ServiceError) -> ServiceError:
    """The same refusal, with each field named as the API calls it."""
    return ServiceError(
        errors={_api_field(field): msgs for field, msgs in refused.message_dict.items()}
    )


def _custom(data: dict) -> dict:
    """The payload's `custom_fields` under the name the services use."""
    if "custom_fields" in data:
        data["custom"] = data.pop("custom_fields")
    return data


def _references(request: HttpRequest, data: dict) -> dict:
    """Turn the `*_id` fields into rows, refusing unknown (or unseen) ids at their field."""
    lookups = {
        "owner_id": ("owner", User.objects.filter(is_active=True), "No such active user."),
        "org_unit_id": ("org_unit", OrgUnit.objects.all(), "No such org unit."),
        "sales_manager_id": (
            "sales_manager",
            User.objects.filter(is_active=True),
            "No such active user.",
        ),
        "group_id": ("group", ClientGroup.objects.all(), "No such client group."),
        "referred_by_id": (
            "referred_by",
            queries.clients_for(request.user),
            "No client you may see has this id.",
        ),
        "parent_id": (
            "parent",
            queries.clients_for(request.user),
            "No client you may see has this id.",
        ),
    }
    resolved = {}
    for api_field, (field, rows, missing) in lookups.items():
        if (row_id := data.pop(api_field, None)) is not None:
            resolved[field] = rows.filter(pk=row_id).first()
            if resolved[field] is None:
                raise ServiceError(missing, field=api_field)
    return resolved


@router.get("", response={200: list[ClientOut], **problems(422)}, summary="List clients")
@paginate(Page)
def client_list(request: HttpRequest, q: Text = "", after: Id | None = None):
    """Clients you may see, newest first.

    `q` finds a fragment of the number, names, email, phone, tax ids or custom values. For
    deep lists pass `after` (the last id you got) with offset 0: each page is then as fast as
    the first.
    """
    found = queries.client_search(request.user, q)
    if after is not None:
        found = found.filter(pk__lt=after)
    return found.order_by("-id")


class DuplicateOut(Schema):
    """An existing client that already has a value being entered."""

    field: str
    client_id: int | None = Field(description="null when the client is outside your view")
    number: str | None


@router.get(
    "/duplicates",
    response={200: list[DuplicateOut], **problems(422)},
    summary="Check for duplicates",
)
def duplicates(
    request: HttpRequest,
    email: Text = "",
    phone: Text = "",
    tax_id: Text = "",
    national_id: Text = "",
    country: Text = "",
    kind: Client.Kind = Client.Kind.COMPANY,
    exclude_id: Id | None = None,
):
    """Which live clients already use this email, phone, tax id or national id."""
    values = {}
    for field, raw in [
        ("email", email),
        ("phone", phone),
        ("tax_id", tax_id),
        ("national_id", national_id),
    ]:
        if raw and (
            value := services.normalized_for_duplicates(field, raw, country=country, kind=kind)
        ):
            values[field] = value
    found = (
        search.find_duplicates(user=request.user, exclude_id=exclude_id, **values) if values else []
    )
    return [
        {
            "field": d.field,
            "client_id": d.client.pk if d.visible else None,
            "number": d.client.number if d.visible else None,
        }
        for d in found
    ]


@router.get("/{client_id}", response={200: ClientOut, **problems(404, 422)}, summary="Get a client")
def client_get(request: HttpRequest, client_id: Id):
    """One client, if you may see it."""
    return queries.client_get(request.user, client_id)


@router.post(
    "", response={201: ClientOut, **problems(400, 403, 409, 422)}, summary="Create a client"
)
def client_create(request: HttpRequest, payload: ClientIn):
    """Add a client; the email must not be used by another client."""
    _require(request, "clients.add")
    data = _custom(payload.dict(exclude_none=True))
    data.update(_references(request, data))
    try:
        return Status(201, services.client_create(by=request.user, **data))
    except ServiceError as refused:
        raise _at_api_fields(refused) from refused


@router.patch(
    "/{client_id}",
    response={200: ClientOut, **problems(400, 403, 404, 409, 422)},
    summary="Change a client",
)
def client_update(request: HttpRequest, client_id: Id, payload: ClientPatch):
    """Change some fields of a client you may see."""
    client = queries.client_get(request.user, client_id)
    _require(request, "clients.change")
    changes = _custom(payload.dict(exclude_unset=True, exclude_none=True))
    changes.update(_references(request, changes))
    try:
        return services.client_update(
            client=client, by=request.user, expected_version=changes.pop("version", None), **changes
        )
    except ConflictError:
        raise
    except ServiceError as refused:
        raise _at_api_fields(refused) from refused


class CommentOut(Schema):
    """A comment under a note."""

    id: int
    body: str
    author_id: int | None = Field(None, alias="actor_id")
    created_at: dt.datetime


class NoteOut(CommentOut):
    """An account note with its comments; notes are never changed or deleted."""

    important: bool
    comments: list[CommentOut]

    @staticmethod
    def resolve_comments(note) -> list:
        return list(note.comments.all())


class NoteIn(Schema):
    """A new note."""

    body: Text = Field(min_length=1, max_length=services.NOTE_MAX_LENGTH)
    important: bool = False


class CommentIn(Schema):
    """A new comment on a note."""

    body: Text = Field(min_length=1, max_length=services.NOTE_MAX_LENGTH)


@router.get(
    "/{client_id}/notes",
    response={200: list[NoteOut], **problems(404, 422)},
    summary="List a client's notes",
)
def note_list(request: HttpRequest, client_id: Id):
    """Notes of a client you may see: important first, then newest, each with its comments."""
    client = queries.client_get(request.user, client_id)
    return queries.notes_of(request.user, client)


@router.post(
    "/{client_id}/notes",
    response={201: NoteOut, **problems(400, 403, 404, 409, 422)},
    summary="Write a note",
)
def note_create(request: HttpRequest, client_id: Id, payload: NoteIn):
    """Add a note to a client you may see; a note can never be changed or deleted."""
    client = queries.client_get(request.user, client_id)
    _require(request, "clients.add_note")
    note = services.note_add(client=client, by=request.user, **payload.dict())
    return Status(201, note)


@router.post(
    "/{client_id}/notes/{note_id}/comments",
    response={201: CommentOut, **problems(400, 403, 404, 409, 422)},
    summary="Comment on a note",
)
def note_comment(request: HttpRequest, client_id: Id, note_id: Id, payload: CommentIn):
    """Answer a note of a client you may see."""
    client = queries.client_get(request.user, client_id)
    note = queries.note_get(request.user, client, note_id)
    _require(request, "clients.add_note")
    comment = services.note_comment(note=note, by=request.user, body=payload.body)
    return Status(201, comment)


class StatusIn(Schema):
    """A status change: now, backdated (a past day) or deferred (a later day)."""

    status: Client.Status
    reason: Text = Field(min_length=1, max_length=200)
    effective_date: dt.date | None = None
    note: Text = Field("", max_length=services.NOTE_MAX_LENGTH)


class DeferredActionOut(Schema):
    """A scheduled change and what became of it."""

    id: int
    kind: str
    due_on: dt.date
    state: str
    status: str = Field(alias="params.status")
    reason: str = Field(alias="params.reason")
    result: str
    created_at: dt.datetime
    executed_at: dt.datetime | None


class StatusOut(Schema):
    """What a status request did: the client now, or the action scheduled for later."""

    client: ClientOut
    deferred_action: DeferredActionOut | None


class DeferredActionPatch(Schema):
    """New day or content of a pending action."""

    due_on: dt.date
    status: Client.Status
    reason: Text = Field(min_length=1, max_length=200)
    note: Text = Field("", max_length=services.NOTE_MAX_LENGTH)


@router.post(
    "/{client_id}/status",
    response={200: StatusOut, **problems(400, 403, 404, 409, 422)},
    summary="Change a client's status",
)
def status_change(request: HttpRequest, client_id: Id, payload: StatusIn):
    """Active, inactive or closed: effective now, backdated, or deferred to a later day."""
    client = queries.client_get(request.user, client_id)
    _require(request, "clients.change_status")
    outcome = services.client_set_status(
        client=client,
        by=request.user,
        status=payload.status,
        reason=payload.reason,
        effective=payload.effective_date,
        note=payload.note,
    )
    if isinstance(outcome, DeferredAction):
        return {"client": outcome.client, "deferred_action": outcome}
    return {"client": outcome, "deferred_action": None}


@router.get(
    "/{client_id}/deferred-actions",
    response={200: list[DeferredActionOut], **problems(404, 422)},
    summary="List a client's deferred actions",
)
def deferred_action_list(request: HttpRequest, client_id: Id):
    """Pending actions by day, then the latest done or failed ones."""
    client = queries.client_get(request.user, client_id)
    return queries.deferred_actions_of(request.user, client)


@router.patch(
    "/{client_id}/deferred-actions/{action_id}",
    response={200: DeferredActionOut, **problems(400, 403, 404, 422)},
    summary="Change a pending deferred action",
)
def deferred_action_update(
    request: HttpRequest, client_id: Id, action_id: Id, payload: DeferredActionPatch
):
    """Move a pending action to another day or change what it does."""
    client = queries.client_get(request.user, client_id)
    action = queries.deferred_action_get(request.user, client, action_id)
    _require(request, "clients.change_status")
    return services.deferred_action_update(action=action, by=request.user, **payload.dict())


@router.post(
    "/{client_id}/deferred-actions/{action_id}/execute",
    response={200: DeferredActionOut, **problems(400, 403, 404, 409, 422)},
    summary="Execute a deferred action now",
)
def deferred_action_execute(request: HttpRequest, client_id: Id, action_id: Id):
    """Run a pending action now; its state says whether it applied."""
    client = queries.client_get(request.user, client_id)
    action = queries.deferred_action_get(request.user, client, action_id)
    _require(request, "clients.change_status")
    return services.deferred_action_execute(action=action, by=request.user)


@router.delete(
    "/{client_id}/deferred-actions/{action_id}",
    response={204: None, **problems(403, 404, 422)},
    summary="Delete a deferred action",
)
def deferred_action_delete(request: HttpRequest, client_id: Id, action_id: Id):
    """Drop an action that has not run, or could not."""
    client = queries.client_get(request.user, client_id)
    action = queries.deferred_action_get(request.user, client, action_id)
    _require(request, "clients.change_status")
    services.deferred_action_delete(action=action, by=request.user)
    return Status(204, None)


class PhoneOut(Schema):
    """A contact's phone number of one type."""

    type: str
    number: str


class ContactOut(Schema):
    """A person at the client."""

    id: int
    first_name: str
    last_name: str
    position: str
    email: str
    phones: list[PhoneOut]

    @staticmethod
    def resolve_phones(contact) -> list:
        return list(contact.phones.all())


class ContactIn(Schema):
    """A contact; `phones` maps a type (mobile, work, home, fax) to one number."""

    first_name: Text = Field("", max_length=100)
    last_name: Text = Field(min_length=1, max_length=100)
    position: Text = Field("", max_length=100)
    email: Text = Field("", max_length=254)
    phones: dict[ContactPhone.Type, Text] = {}


class AddressIO(Schema):
    """A typed address."""

    type: Address.Type
    line1: Text = Field(min_length=1, max_length=200)
    line2: Text = Field("", max_length=200)
    postcode: Text = Field("", max_length=20)
    city: Text = Field(min_length=1, max_length=100)
    region: Text = Field("", max_length=100)
    country: Text = Field(min_length=2, max_length=2)
    latitude: Decimal | None = Field(None, ge=-90, le=90, max_digits=9, decimal_places=6)
    longitude: Decimal | None = Field(None, ge=-180, le=180, max_digits=9, decimal_places=6)
    notes: Text = Field("", max_length=500)


class AddressOut(AddressIO):
    """A typed address as stored."""

    id: int


@router.get(
    "/{client_id}/contacts",
    response={200: list[ContactOut], **problems(404, 422)},
    summary="List a client's contacts",
)
def contact_list(request: HttpRequest, client_id: Id):
    """Contacts of a client you may see, the first (who names the account) first."""
    client = queries.client_get(request.user, client_id)
    return client.contacts.prefetch_related("phones").order_by("id")


@router.post(
    "/{client_id}/contacts",
    response={201: ContactOut, **problems(400, 403, 404, 409, 422)},
    summary="Add a contact",
)
def contact_create(request: HttpRequest, client_id: Id, payload: ContactIn):
    """Add a contact to a client you may see."""
    client = queries.client_get(request.user, client_id)
    _require(request, "clients.change")
    data = payload.dict()
    data["phones"] = {str(kind): number for kind, number in data["phones"].items()}
    return Status(201, services.contact_add(client=client, by=request.user, **data))


@router.put(
    "/{client_id}/contacts/{contact_id}",
    response={200: ContactOut, **problems(400, 403, 404, 422)},
    summary="Replace a contact's details",
)
def contact_update(request: HttpRequest, client_id: Id, contact_id: Id, payload: ContactIn):
    """Set a contact's details and phones (a type left out loses its number)."""
    client = queries.client_get(request.user, client_id)
    contact = get_object_or_404(Contact, client=client, pk=contact_id)
    _require(request, "clients.change")
    data = payload.dict()
    data["phones"] = {str(kind): number for kind, number in data["phones"].items()}
    return services.contact_update(contact=contact, by=request.user, **data)


@router.delete(
    "/{client_id}/contacts/{contact_id}",
    response={204: None, **problems(403, 404, 422)},
    summary="Remove a contact",
)
def contact_delete(request: HttpRequest, client_id: Id, contact_id: Id):
    """Remove a contact other than the first."""
    client = queries.client_get(request.user, client_id)
    contact = get_object_or_404(Contact, client=client, pk=contact_id)
    _require(request, "clients.change")
    services.contact_delete(contact=contact, by=request.user)
    return Status(204, None)


@router.get(
    "/{client_id}/addresses",
    response={200: list[AddressOut], **problems(404, 422)},
    summary="List a client's addresses",
)
def address_list(request: HttpRequest, client_id: Id):
    """Addresses of a client you may see, by type."""
    client = queries.client_get(request.user, client_id)
    return client.addresses.all()


@router.post(
    "/{client_id}/addresses",
    response={201: AddressOut, **problems(400, 403, 404, 409, 422)},
    summary="Add an address",
)
def address_create(request: HttpRequest, client_id: Id, payload: AddressIO):
    """Add a typed address to a client you may see."""
    client = queries.client_get(request.user, client_id)
    _require(request, "clients.change")
    return Status(201, services.address_add(client=client, by=request.user, **payload.dict()))


@router.put(
    "/{client_id}/addresses/{address_id}",
    response={200: AddressOut, **problems(400, 403, 404, 422)},
    summary="Replace an address",
)
def address_update(request: HttpRequest, client_id: Id, address_id: Id, payload: AddressIO):
    """Set every field of an address."""
    client = queries.client_get(request.user, client_id)
    address = get_object_or_404(Address, client=client, pk=address_id)
    _require(request, "clients.change")
    return services.address_update(address=address, by=request.user, **payload.dict())


@router.delete(
    "/{client_id}/addresses/{address_id}",
    response={204: None, **problems(403, 404, 422)},
    summary="Remove an address",
)
def address_delete(request: HttpRequest, client_id: Id, address_id: Id):
    """Remove an address."""
    client = queries.client_get(request.user, client_id)
    address = get_object_or_404(Address, client=client, pk=address_id)
    _require(request, "clients.change")
    services.address_delete(address=address, by=request.user)
    return Status(204, None)


@router.delete(
    "/{client_id}", response={204: None, **problems(400, 403, 404, 422)}, summary="Delete a client"
)
def client_delete(request: HttpRequest, client_id: Id, reason: Query[Reason]):
    """Delete a client: it leaves every list and search, its history is kept for the record."""
    client = queries.client_get(request.user, client_id)
    _require(request, "clients.delete")
    services.client_delete(client=client, reason=reason, by=request.user)
    return Status(204, None)


class MergeIn(Schema):
    """The client to fold into the one in the path."""

    merged_id: Id = Field(description="this client is closed and everything it has moves")


@router.post(
    "/{client_id}/merge",
    response={200: ClientOut, **problems(400, 403, 404, 422)},
    summary="Merge another client into this one",
)
def client_merge(request: HttpRequest, client_id: Id, payload: MergeIn):
    """Move everything of `merged_id` to this client and close it as merged."""
    survivor = queries.client_get(request.user, client_id)
    _require(request, "clients.change")
    _require(request, "clients.merge")
    merged = queries.clients_for(request.user).filter(pk=payload.merged_id).first()
    if merged is None:
        raise ServiceError("No client you may see has this id.", field="merged_id")
    try:
        return services.client_merge(survivor=survivor, merged=merged, by=request.user)
    except ServiceError as refused:
        raise ServiceError(errors={"merged_id": refused.messages}) from refused


class EventOut(Schema):
    """One line of a client's newsfeed."""

    id: int
    occurred_at: dt.datetime
    category: str
    type: str
    message: str
    amount_minor: int | None
    currency: str
    reference: str
    actor_id: int | None
    client_id: int | None = Field(description="differs from the path for merged clients' history")


@router.get(
    "/{client_id}/newsfeed",
    response={200: list[EventOut], **problems(404, 422)},
    summary="A client's newsfeed",
)
@paginate(Page)
def newsfeed(
    request: HttpRequest,
    client_id: Id,
    category: EventCategory | None = None,
    reference: Text = "",
):
    """The account's history, newest first, by category or reference."""
    client = queries.client_get(request.user, client_id)
    return queries.newsfeed_of(request.user, client, category=category or "", reference=reference)


class DocumentOut(Schema):
    """A document or photo attached to a client."""

    id: int
    name: str
    description: str
    content_type: str
    size: int
    sha256: str
    uploaded_by_id: int
    uploaded_at: dt.datetime


@router.get(
    "/{client_id}/documents",
    response={200: list[DocumentOut], **problems(404, 422)},
    summary="A client's documents",
)
def document_list(request: HttpRequest, client_id: Id):
    """The client's documents, newest first."""
    client = queries.client_get(request.user, client_id)
    return list(queries.documents_of(request.user, client))


@router.post(
    "/{client_id}/documents",
    response={201: DocumentOut, **problems(400, 403, 404, 422)},
    summary="Attach a document",
)
def document_create(
    request: HttpRequest,
    client_id: Id,
    file: File[UploadedFile],
    description: Form[str] = "",
):
    """Upload a file (multipart); its content decides whether it is accepted."""
    client = queries.client_get(request.user, client_id)
    _require(request, "clients.change")
    return Status(
        201,
        documents.document_add(
            client=client, upload=file, description=description, by=request.user
        ),
    )


@router.get(
    "/{client_id}/documents/{document_id}/content",
    response={200: None, **problems(404, 422)},
    summary="Download a document",
)
def document_content(request: HttpRequest, client_id: Id, document_id: Id):
    """The file itself."""
    client = queries.client_get(request.user, client_id)
    document = queries.document_get(request.user, client, document_id)
    return FileResponse(
        document.file.open("rb"),
        as_attachment=True,
        filename=document.name,
        content_type=document.content_type,
    )


@router.delete(
    "/{client_id}/documents/{document_id}",
    response={204: None, **problems(403, 404, 422)},
    summary="Remove a document",
)
def document_delete(request: HttpRequest, client_id: Id, document_id: Id):
    """Remove a document from the client."""
    client = queries.client_get(request.user, client_id)
    document = queries.document_get(request.user, client, document_id)
    _require(request, "clients.change")
    documents.document_delete(document=document, by=request.user)
    return Status(204, None)
