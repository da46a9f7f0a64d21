"""Message templates and sending over the API, mounted at /api/v1/ (MKT-1).

Templates need `marketing.templates` to change (reading and rendering need `sales.work`);
a record out of the caller's sight is a 404; bad input is a 422 problem at the field.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StringConstraints

from clientbase.core.api_base import Id, Page, Text, problems
from clientbase.core.errors import ServiceError
from clientbase.marketing import queries, services
from clientbase.marketing.models import MessageTemplate

router = Router()

WORK = "sales.work"
MANAGE = "marketing.templates"
Channel = Literal["email", "sms"]
Name = Annotated[Text, StringConstraints(max_length=100)]
Subject = Annotated[Text, StringConstraints(max_length=200)]
Body = Annotated[Text, StringConstraints(max_length=services.BODY_MAX)]
Language = Literal["", "en", "ru", "fr", "vi"]


def _require(request: HttpRequest, action: str) -> None:
    if not request.user.has_perm(action):
        raise PermissionDenied


@contextmanager
def _fields(**renames: str) -> Iterator[None]:
    """Re-raise a service's refusal with each field named as the API calls it."""
    try:
        yield
    except ServiceError as refused:
        errors = {renames.get(name, name): msgs for name, msgs in refused.message_dict.items()}
        raise ServiceError(errors=errors) from refused


def _template(template_id: int) -> MessageTemplate:
    template = MessageTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise Http404
    return template


class TemplateOut(Schema):
    """A message template."""

    id: int
    name: str
    channel: Channel
    language: str
    subject: str
    body: str
    active: bool
    updated_at: str

    @staticmethod
    def resolve_updated_at(template) -> str:
        return template.updated_at.isoformat()


class TemplateIn(Schema):
    """A new template: the subject is for email only."""

    name: Name
    channel: Channel
    language: Language = ""
    subject: Subject = ""
    body: Body
    active: bool = True


class TemplatePatch(Schema):
    """Fields of a template to change; the others stay."""

    name: Name | None = None
    language: Language | None = None
    subject: Subject | None = None
    body: Body | None = None
    active: bool | None = None


class RecordsIn(Schema):
    """The records a message is about, by id."""

    client_id: Id | None = None
    contact_id: Id | None = None
    lead_id: Id | None = None
    deal_id: Id | None = None
    invoice_id: Id | None = None


class RenderedOut(Schema):
    """A template filled in for the records: what to send and where."""

    subject: str
    body: str
    to: str


class MessageIn(RecordsIn):
    """One message to send; the subject and text may hold tags, filled in again on sending."""

    channel: Channel
    to: Annotated[Text, StringConstraints(max_length=254)]
    subject: Subject = ""
    body: Body
    template_id: Id | None = None


class MessageOut(Schema):
    """A message that went out, and the activity that logs it."""

    channel: Channel
    to: str
    subject: str
    body: str
    activity_id: int
    sms_id: int | None = None


def _records(request: HttpRequest, payload: RecordsIn) -> queries.Records:
    return queries.records_for(
        request.user,
        client=payload.client_id,
        contact=payload.contact_id,
        lead=payload.lead_id,
        deal=payload.deal_id,
        invoice=payload.invoice_id,
    )


@router.get(
    "/templates", response={200: list[TemplateOut], **problems(403, 422)}, summary="List templates"
)
@paginate(Page)
def template_list(request: HttpRequest, channel: Channel | None = None, active: bool = False):
    """Message templates by channel and name; `active=true` keeps those in use."""
    _require(request, WORK)
    return queries.templates(channel=channel or "", active_only=active)


@router.post(
    "/templates",
    response={201: TemplateOut, **problems(400, 403, 422)},
    summary="Create a template",
)
def template_create(request: HttpRequest, payload: TemplateIn):
    """A new template; an unknown tag or a syntax error is refused at its field."""
    _require(request, MANAGE)
    template = services.template_save(by=request.user, **payload.dict())
    return Status(201, template)


@router.get(
    "/templates/{template_id}",
    response={200: TemplateOut, **problems(403, 404, 422)},
    summary="Get a template",
)
def template_get(request: HttpRequest, template_id: Id):
    """One message template."""
    _require(request, WORK)
    return _template(template_id)


@router.patch(
    "/templates/{template_id}",
    response={200: TemplateOut, **problems(400, 403, 404, 422)},
    summary="Change a template",
)
def template_update(request: HttpRequest, template_id: Id, payload: TemplatePatch):
    """Change some fields of a template; the text is checked again."""
    template = _template(template_id)
    _require(request, MANAGE)
    current = {
        "name": template.name,
        "language": template.language,
        "subject": template.subject,
        "body": template.body,
        "active": template.active,
    }
    changes = {k: v for k, v in payload.dict(exclude_unset=True).items() if v is not None}
    return services.template_save(
        by=request.user,
        template=template,
        channel=template.channel,
        **{**current, **changes},
    )


@router.delete(
    "/templates/{template_id}",
    response={204: None, **problems(403, 404, 422)},
    summary="Delete a template",
)
def template_remove(request: HttpRequest, template_id: Id):
    """Remove a template; messages sent with it keep their text."""
    template = _template(template_id)
    _require(request, MANAGE)
    services.template_delete(by=request.user, template=template)
    return Status(204, None)


@router.post(
    "/templates/{template_id}/render",
    response={200: RenderedOut, **problems(400, 403, 404, 422)},
    summary="Fill a template in for records",
)
def template_render(request: HttpRequest, template_id: Id, payload: RecordsIn):
    """The template's subject and text for the records, and the address they would go to."""
    template = _template(template_id)
    _require(request, WORK)
    draft = services.template_apply(
        by=request.user, template=template, records=_records(request, payload)
    )
    return RenderedOut(subject=draft.subject, body=draft.body, to=draft.to)


@router.post(
    "/messages",
    response={201: MessageOut, **problems(400, 403, 404, 409, 422)},
    summary="Send an email or SMS",
)
def message_create(request: HttpRequest, payload: MessageIn):
    """Send one message about records you may see; it is logged as a done activity."""
    _require(request, WORK)
    records = _records(request, payload)
    template = None
    if payload.template_id is not None:
        template = MessageTemplate.objects.filter(pk=payload.template_id).first()
        if template is None:
            raise ServiceError(_("No such template."), field="template_id")
    with _fields(template="template_id"):
        sent = services.message_send(
            by=request.user,
            channel=payload.channel,
            to=payload.to,
            subject=payload.subject,
            body=payload.body,
            template=template,
            **records.as_kwargs(),
        )
    return Status(
        201,
        MessageOut(
            channel=sent.channel,
            to=sent.to,
            subject=sent.subject,
            body=sent.body,
            activity_id=sent.activity.pk,
            sms_id=sent.sms.pk if sent.sms else None,
        ),
    )
