"""Support over the API: tickets and their actions, departments, the knowledge base, and the
inbound mail webhook, through the same services and visibility as the ticket pages.

A ticket out of the caller's sight is a 404 for reading and for every action; an action the
role does not allow is a 403; bad input is a 422 problem at the field.
"""

import base64
import binascii
import datetime as dt
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError
from ninja.pagination import paginate
from pydantic import StringConstraints

from clientbase.accounts.models import OrgUnit, User
from clientbase.clients.queries import clients_for
from clientbase.core.api_base import Id, Page, Text, problems
from clientbase.core.errors import ServiceError
from clientbase.support import queries, services
from clientbase.support.intake import mail_ingest
from clientbase.support.models import (
    Department,
    KbArticle,
    KbCategory,
    Priority,
    Ticket,
    TicketMessage,
)

router = Router()

WORK = "support.work"
Email = Annotated[Text, StringConstraints(max_length=254)]
Note = Annotated[Text, StringConstraints(max_length=services.BODY_MAX)]
Body = Annotated[Text, StringConstraints(min_length=1, max_length=services.BODY_MAX)]
Minutes = Annotated[int, Field(ge=1, le=525_600, description="minutes (at most a year)")]
# "me", "none" or a user id.
AssigneeFilter = Annotated[str, StringConstraints(pattern=r"^(me|none|[1-9][0-9]{0,17})$")]
StatusFilter = Literal[
    "open",
    "answered",
    "customer_reply",
    "on_hold",
    "in_progress",
    "closed",
    "awaiting",
    "unresolved",
]
MAIL_TYPE = "message/rfc822"


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


def _department_ref(department_id: int, field: str) -> Department:
    department = Department.objects.filter(pk=department_id).first()
    if department is None:
        raise ServiceError(_("No such department."), field=field)
    return department


def _user_ref(user_id: int | None, field: str) -> User | None:
    if user_id is None:
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ServiceError(_("No such active user."), field=field)
    return user


def _ticket_ref(request: HttpRequest, ticket_id: int, field: str) -> Ticket:
    ticket = queries.tickets_for(request.user).filter(pk=ticket_id).first()
    if ticket is None:
        raise ServiceError(_("No ticket you may see has this id."), field=field)
    return ticket


def _ticket(request: HttpRequest, ticket_id: int) -> Ticket:
    """A ticket the caller may see, with what its answer shows; else a 404."""
    ticket = (
        queries.tickets_for(request.user)
        .select_related("client", "department", "owner", "merged_into")
        .filter(pk=ticket_id)
        .first()
    )
    if ticket is None:
        raise Http404
    return ticket


def _workable(request: HttpRequest, ticket_id: int) -> Ticket:
    """A ticket the caller may see (else 404) and work on (else 403)."""
    ticket = _ticket(request, ticket_id)
    _require(request, WORK)
    return ticket


# ----------------------------------------------------------------------------- schemas


class TicketOut(Schema):
    """A ticket as lists show it."""

    id: int
    number: str
    subject: str
    status: str
    priority: str
    department_id: int
    department: str = Field(alias="department.name")
    client_id: int | None
    client_name: str | None
    email: str = Field(description="the address our replies go to")
    name: str
    assignee_id: int | None = Field(alias="owner_id")
    assignee_name: str | None
    cc: list[str]
    is_complaint: bool
    source: str
    created_at: dt.datetime
    last_activity_at: dt.datetime
    due_at: dt.datetime | None = Field(description="respond by: set while the customer waits")
    overdue: bool
    escalated_at: dt.datetime | None
    closed_at: dt.datetime | None
    merged_into_id: int | None
    version: int

    @staticmethod
    def resolve_client_name(ticket) -> str | None:
        return ticket.client.name if ticket.client_id else None

    @staticmethod
    def resolve_assignee_name(ticket) -> str | None:
        return ticket.owner.display_name if ticket.owner_id else None

    @staticmethod
    def resolve_overdue(ticket) -> bool:
        return ticket.is_overdue


class AttachmentOut(Schema):
    """A file that came with a message; a dropped one (too large) has no download."""

    id: int
    name: str
    content_type: str
    size: int
    download_url: str | None
    dropped_reason: str

    @staticmethod
    def resolve_download_url(attachment) -> str | None:
        if not attachment.file:
            return None
        return reverse("support:attachment", args=[attachment.pk])


class TicketMessageOut(Schema):
    """One message of a ticket: the customer's, our reply, or an internal note."""

    id: int
    kind: str
    author_id: int | None
    author: str | None = Field(description="the staff member who wrote it")
    from_email: str
    from_name: str
    to: list[str]
    cc: list[str]
    body: str
    created_at: dt.datetime
    sent_at: dt.datetime | None = Field(description="when our reply was emailed")
    auto_generated: bool
    problems: list[str] = Field(description="what went wrong reading a received mail")
    attachments: list[AttachmentOut]

    @staticmethod
    def resolve_author(message) -> str | None:
        return message.author.display_name if message.author_id else None

    @staticmethod
    def resolve_problems(message) -> list[str]:
        return [str(p) for p in message.problems or []]

    @staticmethod
    def resolve_attachments(message) -> list:
        return list(message.attachments.all())


class TicketDetailOut(TicketOut):
    """A ticket with its whole thread, internal notes included."""

    merged_into_number: str | None
    messages: list[TicketMessageOut]

    @staticmethod
    def resolve_merged_into_number(ticket) -> str | None:
        return ticket.merged_into.number if ticket.merged_into_id else None

    @staticmethod
    def resolve_messages(ticket) -> list[TicketMessage]:
        return queries.thread(ticket)


class TicketIn(Schema):
    """A new ticket, for a client or for a guest (by email)."""

    client_id: Id | None = Field(None, description="a client you may see; none for a guest")
    email: Email = Field("", description="where replies go: the client's address by default")
    name: Text = Field("", max_length=200)
    department_id: Id
    subject: Text = Field(min_length=1, max_length=services.SUBJECT_MAX)
    body: Body
    priority: Priority = Priority.MEDIUM
    cc: list[Email] = Field([], max_length=services.MAX_CC)
    assignee_id: Id | None = None
    is_complaint: bool = False
    from_customer: bool = Field(
        False,
        description="the customer wrote it (a web form): it waits for our answer instead of "
        "being mailed to the customer",
    )


class TicketPatch(Schema):
    """Fields to change; those left out stay. Send `version` to be refused (409) if the
    ticket changed since you read it."""

    priority: Priority | None = None
    cc: list[Email] | None = Field(None, max_length=services.MAX_CC)
    is_complaint: bool | None = None
    subject: Text | None = Field(None, min_length=1, max_length=services.SUBJECT_MAX)
    version: int | None = Field(None, ge=1)


class ReplyIn(Schema):
    """A reply mailed to the customer (and the CC), and the status the ticket takes."""

    body: Body
    cc: list[Email] | None = Field(
        None, max_length=services.MAX_CC, description="replaces the ticket's CC when given"
    )
    status: Literal["answered", "in_progress", "on_hold", "closed"] = "answered"
    version: int | None = Field(None, ge=1)


class TicketNoteIn(Schema):
    """An internal note: never mailed, never shown to the customer."""

    body: Body


class TicketAssignIn(Schema):
    """Who takes the ticket (null: nobody), with an optional note for them."""

    assignee_id: Id | None
    note: Note = ""


class TicketTransferIn(Schema):
    """The department (and person) the ticket moves to, with an optional note."""

    department_id: Id
    assignee_id: Id | None = None
    note: Note = ""


class TicketMergeIn(Schema):
    """The ticket this one is folded into."""

    into_id: Id = Field(description="receives the messages; this ticket stays as a pointer")


# ----------------------------------------------------------------------------- tickets


@router.get("/tickets", response={200: list[TicketOut], **problems(422)}, summary="List tickets")
@paginate(Page)
def ticket_list(
    request: HttpRequest,
    status: StatusFilter | None = None,
    department: Id | None = None,
    priority: Priority | None = None,
    assignee: AssigneeFilter | None = None,
    client: Id | None = None,
    overdue: bool = False,
    complaint: bool = False,
    q: Annotated[Text, StringConstraints(max_length=200)] = "",
):
    """Tickets you may see, newest first; merged ones are left out.

    `status` also takes `awaiting` (the customer spoke last) and `unresolved`; `assignee`
    takes `me`, `none` or a user id; `complaint` keeps unresolved complaints; `q` finds a
    ticket number, an exact email address or a fragment of the subject.
    """
    filters = queries.TicketFilters(
        status=status or "",
        department=department,
        priority=priority or "",
        assignee=assignee or "",
        client=client,
        overdue=overdue,
        complaint=complaint,
        q=q,
    )
    return queries.ticket_list(request.user, filters)


@router.post(
    "/tickets",
    response={201: TicketDetailOut, **problems(400, 403, 409, 422)},
    summary="Open a ticket",
)
def ticket_create(request: HttpRequest, payload: TicketIn):
    """Open a ticket for a client you may see, or for a guest by email.

    Staff-opened tickets mail their first message to the customer; `from_customer` records a
    request the customer sent (e.g. through a web form) that waits for our answer.
    """
    _require(request, WORK)
    client = None
    if payload.client_id is not None:
        client = clients_for(request.user).filter(pk=payload.client_id).first()
        if client is None:
            raise ServiceError(_("No client you may see has this id."), field="client_id")
    department = _department_ref(payload.department_id, "department_id")
    assignee = _user_ref(payload.assignee_id, "assignee_id")
    with _fields(client="client_id", department="department_id", assignee="assignee_id"):
        ticket = services.ticket_open(
            by=request.user,
            department=department,
            subject=payload.subject,
            body=payload.body,
            client=client,
            email=payload.email,
            name=payload.name,
            priority=payload.priority,
            cc=payload.cc,
            assignee=assignee,
            source=Ticket.Source.API,
            from_customer=payload.from_customer,
            is_complaint=payload.is_complaint,
        )
    return Status(201, _ticket(request, ticket.pk))


@router.get(
    "/tickets/{ticket_id}",
    response={200: TicketDetailOut, **problems(404, 422)},
    summary="Get a ticket",
)
def ticket_get(request: HttpRequest, ticket_id: Id):
    """A ticket you may see with its messages, notes and attachments."""
    return _ticket(request, ticket_id)


@router.patch(
    "/tickets/{ticket_id}",
    response={200: TicketDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Change a ticket",
)
def ticket_update(request: HttpRequest, ticket_id: Id, payload: TicketPatch):
    """Change the priority (the deadline follows), CC, complaint flag or subject."""
    ticket = _workable(request, ticket_id)
    changes = payload.dict(exclude_unset=True, exclude_none=True)
    services.ticket_update(by=request.user, ticket=ticket, **changes)
    return _ticket(request, ticket_id)


@router.post(
    "/tickets/{ticket_id}/reply",
    response={200: TicketDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Reply to the customer",
)
def ticket_reply(request: HttpRequest, ticket_id: Id, payload: ReplyIn):
    """Mail a reply (with the ticket number in the subject) and set the ticket's status."""
    ticket = _workable(request, ticket_id)
    services.ticket_reply(
        by=request.user,
        ticket=ticket,
        body=payload.body,
        cc=payload.cc,
        status=payload.status,
        version=payload.version,
    )
    return _ticket(request, ticket_id)


@router.post(
    "/tickets/{ticket_id}/note",
    response={200: TicketDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Add an internal note",
)
def ticket_note(request: HttpRequest, ticket_id: Id, payload: TicketNoteIn):
    """A note for colleagues; the customer never sees it."""
    ticket = _workable(request, ticket_id)
    services.ticket_note(by=request.user, ticket=ticket, body=payload.body)
    return _ticket(request, ticket_id)


@router.post(
    "/tickets/{ticket_id}/assign",
    response={200: TicketDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Assign a ticket",
)
def ticket_assign(request: HttpRequest, ticket_id: Id, payload: TicketAssignIn):
    """Give the ticket to an active user, or to nobody; the note is kept as internal."""
    ticket = _workable(request, ticket_id)
    assignee = _user_ref(payload.assignee_id, "assignee_id")
    with _fields(assignee="assignee_id", body="note"):
        services.ticket_assign(by=request.user, ticket=ticket, assignee=assignee, note=payload.note)
    return _ticket(request, ticket_id)


@router.post(
    "/tickets/{ticket_id}/transfer",
    response={200: TicketDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Move a ticket to another department",
)
def ticket_transfer(request: HttpRequest, ticket_id: Id, payload: TicketTransferIn):
    """The response deadline follows the new department's rules."""
    ticket = _workable(request, ticket_id)
    department = _department_ref(payload.department_id, "department_id")
    assignee = _user_ref(payload.assignee_id, "assignee_id")
    with _fields(department="department_id", assignee="assignee_id", body="note"):
        services.ticket_transfer(
            by=request.user,
            ticket=ticket,
            department=department,
            assignee=assignee,
            note=payload.note,
        )
    return _ticket(request, ticket_id)


@router.post(
    "/tickets/{ticket_id}/close",
    response={200: TicketDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Close a ticket",
)
def ticket_close(request: HttpRequest, ticket_id: Id):
    """Close it; the customer is mailed a link to rate the answer."""
    ticket = _workable(request, ticket_id)
    services.ticket_close(by=request.user, ticket=ticket)
    return _ticket(request, ticket_id)


@router.post(
    "/tickets/{ticket_id}/reopen",
    response={200: TicketDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Reopen a ticket",
)
def ticket_reopen(request: HttpRequest, ticket_id: Id):
    """Open a closed ticket again; it waits for our answer."""
    ticket = _workable(request, ticket_id)
    services.ticket_reopen(by=request.user, ticket=ticket)
    return _ticket(request, ticket_id)


@router.post(
    "/tickets/{ticket_id}/merge",
    response={200: TicketDetailOut, **problems(400, 403, 404, 409, 422)},
    summary="Merge a ticket into another",
)
def ticket_merge(request: HttpRequest, ticket_id: Id, payload: TicketMergeIn):
    """Move this ticket's messages to `into_id`, which is returned; this one stays closed
    as a pointer to it."""
    ticket = _workable(request, ticket_id)
    _require(request, "support.merge")
    target = _ticket_ref(request, payload.into_id, "into_id")
    with _fields(target="into_id"):
        merged = services.ticket_merge(by=request.user, source=ticket, target=target)
    return _ticket(request, merged.pk)


# ----------------------------------------------------------------------------- departments


class DepartmentOut(Schema):
    """A support department; its mailbox password is never shown."""

    id: int
    name: str
    email: str
    org_unit_id: int
    is_default: bool
    position: int
    sla_low: int
    sla_medium: int
    sla_high: int
    sla_urgent: int
    escalation: str
    escalate_to_id: int | None
    imap_enabled: bool
    imap_host: str
    imap_port: int
    imap_ssl: bool
    imap_user: str
    imap_password_set: bool
    imap_folder: str
    active: bool

    @staticmethod
    def resolve_imap_password_set(department) -> bool:
        return bool(department.imap_password)


class DepartmentIn(Schema):
    """A new department: its support address, unit, response deadlines and mailbox."""

    name: Text = Field(min_length=1, max_length=100)
    email: Email = Field(description="mail to this address becomes a ticket here")
    org_unit_id: Id = Field(description="the unit that sees guests' tickets")
    is_default: bool = False
    position: int = Field(0, ge=0, le=32767)
    sla_low: Minutes = 120
    sla_medium: Minutes = 120
    sla_high: Minutes = 120
    sla_urgent: Minutes = 120
    escalation: Department.Escalation = Department.Escalation.NONE
    escalate_to_id: Id | None = None
    imap_enabled: bool = False
    imap_host: Text = Field("", max_length=200)
    imap_port: int = Field(993, ge=1, le=65535)
    imap_ssl: bool = True
    imap_user: Text = Field("", max_length=200)
    imap_password: Text = Field("", max_length=200)
    imap_folder: Text = Field("INBOX", min_length=1, max_length=200)
    active: bool = True


class DepartmentPatch(Schema):
    """Fields to change; an empty `imap_password` keeps the stored one, a null
    `escalate_to_id` clears the escalation contact."""

    name: Text | None = Field(None, min_length=1, max_length=100)
    email: Email | None = None
    org_unit_id: Id | None = None
    is_default: bool | None = None
    position: int | None = Field(None, ge=0, le=32767)
    sla_low: Minutes | None = None
    sla_medium: Minutes | None = None
    sla_high: Minutes | None = None
    sla_urgent: Minutes | None = None
    escalation: Department.Escalation | None = None
    escalate_to_id: Id | None = None
    imap_enabled: bool | None = None
    imap_host: Text | None = Field(None, max_length=200)
    imap_port: int | None = Field(None, ge=1, le=65535)
    imap_ssl: bool | None = None
    imap_user: Text | None = Field(None, max_length=200)
    imap_password: Text | None = Field(None, max_length=200)
    imap_folder: Text | None = Field(None, min_length=1, max_length=200)
    active: bool | None = None


_DEPARTMENT_REFS = {"org_unit": "org_unit_id", "escalate_to": "escalate_to_id"}


def _department_fields(data: dict) -> dict:
    """The payload with its `*_id` fields turned into rows, unknown ids refused."""
    if "org_unit_id" in data:
        unit_id = data.pop("org_unit_id")
        data["org_unit"] = OrgUnit.objects.filter(pk=unit_id).first()
        if data["org_unit"] is None:
            raise ServiceError(_("No such org unit."), field="org_unit_id")
    if "escalate_to_id" in data:
        data["escalate_to"] = _user_ref(data.pop("escalate_to_id"), "escalate_to_id")
    return data


@router.get(
    "/departments",
    response={200: list[DepartmentOut], **problems()},
    summary="List departments",
)
def department_list(request: HttpRequest):
    """Every department, in their order."""
    return list(Department.objects.order_by("position", "name"))


@router.post(
    "/departments",
    response={201: DepartmentOut, **problems(400, 403, 409, 422)},
    summary="Create a department",
)
def department_create(request: HttpRequest, payload: DepartmentIn):
    """A new department; making it the default takes that from the one before."""
    _require(request, "support.settings")
    fields = _department_fields(payload.dict())
    with _fields(**_DEPARTMENT_REFS):
        department = services.department_save(by=request.user, **fields)
    return Status(201, department)


@router.patch(
    "/departments/{department_id}",
    response={200: DepartmentOut, **problems(400, 403, 404, 409, 422)},
    summary="Change a department",
)
def department_update(request: HttpRequest, department_id: Id, payload: DepartmentPatch):
    """Change some fields of a department."""
    department = Department.objects.filter(pk=department_id).first()
    if department is None:
        raise Http404
    _require(request, "support.settings")
    data = payload.dict(exclude_unset=True)
    # Null clears the escalation contact; elsewhere it means "leave as it is".
    data = {k: v for k, v in data.items() if v is not None or k == "escalate_to_id"}
    fields = _department_fields(data)
    with _fields(**_DEPARTMENT_REFS):
        return services.department_save(by=request.user, department=department, **fields)


# ----------------------------------------------------------------------------- knowledge base


class CategoryOut(Schema):
    """A chapter of the knowledge base."""

    id: int
    name: str
    position: int


class ArticleOut(Schema):
    """A knowledge base article."""

    id: int
    category_id: int
    category: str = Field(alias="category.name")
    title: str
    body: str
    keywords: str
    published: bool
    source_ticket_id: int | None = Field(description="the ticket it was written from")
    created_by_id: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ArticleIn(Schema):
    """A new article."""

    category_id: Id
    title: Text = Field(min_length=1, max_length=200)
    body: Body
    keywords: Text = Field("", max_length=300)
    published: bool = True
    source_ticket_id: Id | None = Field(None, description="a ticket you may see")


class ArticlePatch(Schema):
    """Fields of an article to change; those left out stay."""

    category_id: Id | None = None
    title: Text | None = Field(None, min_length=1, max_length=200)
    body: Body | None = None
    keywords: Text | None = Field(None, max_length=300)
    published: bool | None = None


def _category_ref(category_id: int) -> KbCategory:
    category = KbCategory.objects.filter(pk=category_id).first()
    if category is None:
        raise ServiceError(_("No such category."), field="category_id")
    return category


def _article(request: HttpRequest, article_id: int) -> KbArticle:
    """An article the caller may read: a draft only for knowledge base writers."""
    found = queries.articles(published_only=not request.user.has_perm("support.kb"))
    article = found.filter(pk=article_id).first()
    if article is None:
        raise Http404
    return article


@router.get(
    "/kb/categories",
    response={200: list[CategoryOut], **problems()},
    summary="List knowledge base categories",
)
def category_list(request: HttpRequest):
    """The chapters, in their order."""
    return list(KbCategory.objects.order_by("position", "name"))


@router.get(
    "/kb/articles",
    response={200: list[ArticleOut], **problems(422)},
    summary="List knowledge base articles",
)
@paginate(Page)
def article_list(
    request: HttpRequest,
    q: Annotated[Text, StringConstraints(max_length=200)] = "",
    category: Id | None = None,
):
    """Articles by chapter and title; `q` keeps those containing every word. Drafts only
    for knowledge base writers."""
    found = queries.articles(
        q=q, category=category, published_only=not request.user.has_perm("support.kb")
    )
    return found.order_by("category__position", "category__name", "title", "id")


@router.get(
    "/kb/articles/{article_id}",
    response={200: ArticleOut, **problems(404, 422)},
    summary="Get a knowledge base article",
)
def article_get(request: HttpRequest, article_id: Id):
    """One article."""
    return _article(request, article_id)


@router.post(
    "/kb/articles",
    response={201: ArticleOut, **problems(400, 403, 409, 422)},
    summary="Write a knowledge base article",
)
def article_create(request: HttpRequest, payload: ArticleIn):
    """A new article, perhaps written from a resolved ticket."""
    _require(request, "support.kb")
    category = _category_ref(payload.category_id)
    source = None
    if payload.source_ticket_id is not None:
        source = _ticket_ref(request, payload.source_ticket_id, "source_ticket_id")
    with _fields(category="category_id"):
        article = services.article_save(
            by=request.user,
            category=category,
            title=payload.title,
            body=payload.body,
            keywords=payload.keywords,
            published=payload.published,
            source_ticket=source,
        )
    return Status(201, _article(request, article.pk))


@router.patch(
    "/kb/articles/{article_id}",
    response={200: ArticleOut, **problems(400, 403, 404, 409, 422)},
    summary="Change a knowledge base article",
)
def article_update(request: HttpRequest, article_id: Id, payload: ArticlePatch):
    """Change some fields of an article."""
    article = _article(request, article_id)
    _require(request, "support.kb")
    data = payload.dict(exclude_unset=True, exclude_none=True)
    category = _category_ref(data["category_id"]) if "category_id" in data else article.category
    with _fields(category="category_id"):
        services.article_save(
            by=request.user,
            article=article,
            category=category,
            title=data.get("title", article.title),
            body=data.get("body", article.body),
            keywords=data.get("keywords", article.keywords),
            published=data.get("published", article.published),
        )
    return _article(request, article_id)


# ----------------------------------------------------------------------------- inbound mail


class InboundOut(Schema):
    """What became of a received message."""

    outcome: Literal["ticket", "reply", "ignored", "duplicate"] = Field(
        description="`duplicate`: delivered before, nothing done again"
    )
    ticket_id: int | None
    ticket_number: str | None
    reason: str


def _too_large() -> str:
    return _("The message is larger than %(bytes)s bytes.") % {
        "bytes": settings.SUPPORT_MAIL_MAX_BYTES
    }


def _read_capped(request: HttpRequest, cap: int) -> bytes:
    """The request body, refused with a 413 past `cap` bytes without reading it all.

    `request.body` would refuse anything over DATA_UPLOAD_MAX_MEMORY_SIZE, which is made
    for forms; mail with attachments is larger, and has a limit of its own.
    """
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > cap:
        raise HttpError(413, _too_large())
    data = request.read(cap + 1)
    if len(data) > cap:
        raise HttpError(413, _too_large())
    return data


def _raw_message(request: HttpRequest) -> bytes:
    """The received message from a raw or a JSON body."""
    limit = settings.SUPPORT_MAIL_MAX_BYTES
    is_json = request.content_type == "application/json"
    # Base64 makes four bytes of three; leave room for the JSON around it.
    body = _read_capped(request, 4 * math.ceil(limit / 3) + 4096 if is_json else limit)
    if not body.strip():
        raise ServiceError(_("The message is empty."), field="body")
    if request.content_type == MAIL_TYPE:
        return body
    if not is_json:
        raise HttpError(415, _("Send the message as message/rfc822 or as JSON."))
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise HttpError(400, _("The body is not valid JSON.")) from None
    encoded = data.get("raw_base64") if isinstance(data, dict) else None
    if not isinstance(encoded, str):
        raise ServiceError(_("Send the message in raw_base64."), field="raw_base64")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ServiceError(_("This is not base64."), field="raw_base64") from None
    if len(raw) > limit:
        raise HttpError(413, _too_large())
    if not raw.strip():
        raise ServiceError(_("The message is empty."), field="raw_base64")
    return raw


@router.post(
    "/inbound-mail",
    response={200: InboundOut, **problems(400, 403, 413, 415, 422)},
    summary="Deliver a received mail",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                MAIL_TYPE: {"schema": {"type": "string", "format": "binary"}},
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "raw_base64": {
                                "type": "string",
                                "description": "the whole message, base64-encoded",
                            }
                        },
                        "required": ["raw_base64"],
                    }
                },
            },
        }
    },
)
def inbound_mail(request: HttpRequest, department: Id | None = None):
    """The webhook of a mail server or relay: the message becomes a ticket or a reply on one.

    Send the raw message as `message/rfc822`, or as JSON `{"raw_base64": "…"}`. Delivering
    the same message again answers 200 with outcome `duplicate`, so a relay may retry
    safely. `department` files new tickets there instead of by the recipient address.
    """
    _require(request, "support.ingest")
    target = _department_ref(department, "department") if department is not None else None
    raw = _raw_message(request)
    result = mail_ingest(raw, via="webhook", department=target)
    ticket = result.ticket
    return {
        "outcome": result.outcome,
        "ticket_id": ticket.pk if ticket else None,
        "ticket_number": ticket.number if ticket else None,
        "reason": result.reason,
    }
