"""Activities over the API: list, log or schedule, read, change, complete and delete, through
the same services and visibility as the pages.

An activity out of the caller's sight is a 404 for reading and for every action; an action
the role does not allow is a 403; bad input is a 422 problem at the field. POSTs accept an
Idempotency-Key header.
"""

import datetime as dt
from typing import Annotated

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StringConstraints

from clientbase.clients.queries import clients_for
from clientbase.core.api_base import Id, Moment, Page, Text, problems
from clientbase.core.errors import ServiceError
from clientbase.core.visibility import visible
from clientbase.sales import activity_queries as queries
from clientbase.sales import activity_services as services
from clientbase.sales.models import Activity, Deal, Lead

router = Router(tags=["activities"])

WORK = "sales.work"
Subject = Annotated[Text, StringConstraints(min_length=1, max_length=200)]
Body = Annotated[Text, StringConstraints(max_length=20_000)]
Minutes = Annotated[int, Field(ge=0, le=24 * 60)]


def _require(request: HttpRequest) -> None:
    if not request.user.has_perm(WORK):
        raise PermissionDenied


def _activity(request: HttpRequest, activity_id: int) -> Activity:
    """An activity the caller may see, with what its answer shows; else a 404."""
    return queries.activity_get(request.user, activity_id)


def _ref(request: HttpRequest, queryset, pk: int | None, field: str, message: str):
    if pk is None:
        return None
    found = visible(queryset, request.user).filter(pk=pk).first()
    if found is None:
        raise ServiceError(message, field=field)
    return found


class ActivityOut(Schema):
    """An activity."""

    id: int
    kind: Activity.Kind
    subject: str
    body: str
    due_at: dt.datetime
    duration_minutes: int
    done: bool
    done_at: dt.datetime | None
    outcome: str
    remind_at: dt.datetime | None
    reminded_at: dt.datetime | None
    client_id: int | None
    lead_id: int | None
    deal_id: int | None
    owner_id: int | None
    created_at: dt.datetime

    @staticmethod
    def resolve_done(activity) -> bool:
        return activity.done_at is not None


class ActivityIn(Schema):
    """Log what happened (`done`) or schedule what to do."""

    kind: Activity.Kind
    subject: Subject
    due_at: Moment | None = Field(None, description="empty: now")
    duration_minutes: Minutes = 0
    done: bool = False
    outcome: Activity.Outcome = Activity.Outcome.NONE
    body: Body = ""
    remind_at: Moment | None = None
    client_id: Id | None = None
    lead_id: Id | None = None
    deal_id: Id | None = None
    owner_id: Id | None = Field(None, description="empty: you")


class ActivityPatch(Schema):
    """What to change; fields left out keep their values (`remind_at: null` clears it)."""

    kind: Activity.Kind | None = None
    subject: Subject | None = None
    due_at: Moment | None = None
    duration_minutes: Minutes | None = None
    outcome: Activity.Outcome | None = None
    body: Body | None = None
    remind_at: Moment | None = None


class CompleteIn(Schema):
    """What came of it."""

    outcome: Activity.Outcome = Activity.Outcome.NONE
    body: Body = ""


@router.get("/activities", response={200: list[ActivityOut], **problems(403, 422)}, summary="List")
@paginate(Page)
def activity_list(
    request: HttpRequest,
    kind: Activity.Kind | None = None,
    owner: Id | None = None,
    client: Id | None = None,
    lead: Id | None = None,
    deal: Id | None = None,
    due_from: Annotated[Moment | None, Query(alias="from")] = None,
    due_to: Annotated[Moment | None, Query(alias="to")] = None,
    done: bool | None = None,
):
    """Activities you may see, latest due first; `from` and `to` bound the due time."""
    _require(request)
    filters = queries.ActivityFilters(
        kind=kind or "",
        owner=owner,
        client=client,
        lead=lead,
        deal=deal,
        start=due_from,
        end=due_to,
        done=done,
    )
    return queries.activity_list(request.user, filters)


@router.post(
    "/activities",
    response={201: ActivityOut, **problems(400, 403, 409, 422)},
    summary="Log or schedule an activity",
)
def activity_create(request: HttpRequest, payload: ActivityIn):
    """Log an activity (`done: true`) or schedule one, against a client, lead or deal."""
    _require(request)
    client = _ref(
        request,
        clients_for(request.user),
        payload.client_id,
        "client_id",
        _("No client you may see has this id."),
    )
    lead = _ref(request, Lead.objects.all(), payload.lead_id, "lead_id", _("No lead you may see."))
    deal = _ref(request, Deal.objects.all(), payload.deal_id, "deal_id", _("No deal you may see."))
    owner = None
    if payload.owner_id is not None:
        owner = queries.people_in_sight(request.user).filter(pk=payload.owner_id).first()
        if owner is None:
            raise ServiceError(_("You can plan only for people in your sight."), field="owner_id")
    activity = services.activity_create(
        by=request.user,
        kind=payload.kind,
        subject=payload.subject,
        due_at=payload.due_at,
        body=payload.body,
        duration_minutes=payload.duration_minutes,
        done=payload.done,
        outcome=payload.outcome,
        remind_at=payload.remind_at,
        client=client,
        lead=lead,
        deal=deal,
        owner=owner,
    )
    return Status(201, _activity(request, activity.pk))


@router.get(
    "/activities/{activity_id}",
    response={200: ActivityOut, **problems(403, 404, 422)},
    summary="Get an activity",
)
def activity_get(request: HttpRequest, activity_id: Id):
    """An activity you may see."""
    activity = _activity(request, activity_id)
    _require(request)
    return activity


@router.patch(
    "/activities/{activity_id}",
    response={200: ActivityOut, **problems(400, 403, 404, 409, 422)},
    summary="Change an activity",
)
def activity_update(request: HttpRequest, activity_id: Id, payload: ActivityPatch):
    """Reschedule or correct an activity; a moved reminder is sent again at its new time."""
    activity = _activity(request, activity_id)
    _require(request)
    changes = {
        name: value
        for name, value in payload.dict(exclude_unset=True).items()
        if value is not None or name == "remind_at"
    }
    services.activity_update(by=request.user, activity=activity, **changes)
    return _activity(request, activity_id)


@router.post(
    "/activities/{activity_id}/complete",
    response={200: ActivityOut, **problems(400, 403, 404, 409, 422)},
    summary="Complete an activity",
)
def activity_complete(request: HttpRequest, activity_id: Id, payload: CompleteIn | None = None):
    """Tick an activity done; done already keeps its first time and outcome."""
    activity = _activity(request, activity_id)
    _require(request)
    payload = payload or CompleteIn()
    services.activity_complete(
        by=request.user, activity=activity, outcome=payload.outcome, body=payload.body
    )
    return _activity(request, activity_id)


@router.delete(
    "/activities/{activity_id}",
    response={204: None, **problems(403, 404, 422)},
    summary="Delete an activity not done",
)
def activity_delete(request: HttpRequest, activity_id: Id):
    """Delete an activity not done yet; done ones are history (422)."""
    activity = _activity(request, activity_id)
    _require(request)
    services.activity_delete(by=request.user, activity=activity)
    return Status(204, None)
