"""Pages of the sales module: activity area (the card panel, calendar, to-do list, lists,
reorder reminders and the client profile's Sales tab)."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clientbase.clients.queries import client_get
from clientbase.core import clock
from clientbase.core.errors import ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.money import Money
from clientbase.core.permissions import require_action
from clientbase.core.visibility import get_visible_or_404, visible
from clientbase.sales import activity_queries as queries
from clientbase.sales import activity_services as services
from clientbase.sales.activity_forms import (
    ActivityEditForm,
    ActivityForm,
    CompleteForm,
    ReorderRuleForm,
    RescheduleForm,
)
from clientbase.sales.models import Activity, Contract, Deal, Lead, Quote, ReorderRule

WORK = "sales.work"


def _number(value: str | None) -> int | None:
    value = value or ""
    return int(value) if value.isdigit() and len(value) < 19 else None


def _subjects(request: HttpRequest) -> dict:
    """The client, lead or deal a request names (in its form or query), through visibility."""
    data = request.POST if request.method == "POST" else request.GET
    found: dict = {"client": None, "lead": None, "deal": None}
    if (pk := _number(data.get("deal"))) is not None:
        found["deal"] = get_visible_or_404(Deal.objects.all(), request.user, pk=pk)
    if (pk := _number(data.get("lead"))) is not None:
        found["lead"] = get_visible_or_404(Lead.objects.all(), request.user, pk=pk)
    if (pk := _number(data.get("client"))) is not None:
        found["client"] = client_get(request.user, pk)
    return found


def _return_to(request: HttpRequest) -> HttpResponse:
    """Back to the page the form was on, if it is one of ours."""
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or ""
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return redirect(target if safe else "sales:activities")


def _panel_response(request: HttpRequest, subjects: dict, form=None):
    """The panel again (for htmx), or back to where the user came from."""
    if not request.headers.get("HX-Request"):
        return _return_to(request)
    panel = queries.panel_for(request.user, **subjects)
    return render(
        request,
        "sales/_activities.html",
        {"activity_panel": panel, "activity_form": form},
    )


@require_action(WORK)
@require_POST
def activity_new(request: HttpRequest) -> HttpResponse:
    """Log a done activity or schedule one from a card's quick form."""
    subjects = _subjects(request)
    form = ActivityForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.activity_create(
                by=request.user,
                kind=data["kind"],
                subject=data["subject"],
                due_at=data["due_at"],
                body=data["body"],
                duration_minutes=data["duration_minutes"] or 0,
                done=data["mode"] == "done",
                outcome=data["outcome"] or "",
                remind_at=data["remind_at"],
                **subjects,
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            if not request.headers.get("HX-Request"):
                messages.success(request, _("Activity saved."))
            return _panel_response(request, subjects)
    if not request.headers.get("HX-Request"):
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    # 200, not 422: htmx swaps only successful answers, and the panel shows the errors.
    return _panel_response(request, subjects, form=form)


def _panel_subjects(request: HttpRequest, activity) -> dict:
    """The card the panel posting this was on; else the activity's own client, lead or deal."""
    subjects = _subjects(request)
    if any(subjects.values()):
        return subjects
    for name in ("deal", "lead", "client"):
        if getattr(activity, f"{name}_id"):
            return {name: getattr(activity, name)}
    return subjects


def _back(request: HttpRequest, activity, subjects: dict, *, row: bool = False):
    """After a change: the panel, a to-do row, or a redirect."""
    if request.headers.get("HX-Request") and request.POST.get("view") == "todo":
        return render(request, "sales/todo_row.html", {"activity": activity, "now": clock.now()})
    if request.headers.get("HX-Request") and any(subjects.values()):
        return _panel_response(request, subjects)
    return _return_to(request)


@require_action(WORK)
@require_POST
def activity_complete(request: HttpRequest, pk: int) -> HttpResponse:
    """Tick an activity done (htmx from a panel or the to-do list)."""
    activity = queries.activity_get(request.user, pk)
    form = CompleteForm(request.POST)
    outcome = form.data.get("outcome", "") if form.is_valid() else ""
    try:
        activity = services.activity_complete(
            by=request.user, activity=activity, outcome=outcome, body=form.data.get("body", "")
        )
    except ServiceError as refused:
        messages.error(request, refused.messages[0])
    return _back(request, activity, _panel_subjects(request, activity))


@require_action(WORK)
@require_POST
def activity_reschedule(request: HttpRequest, pk: int) -> HttpResponse:
    """Move an activity to another time (htmx from a panel, the calendar or the to-do list)."""
    activity = queries.activity_get(request.user, pk)
    form = RescheduleForm(request.POST)
    if form.is_valid():
        try:
            activity = services.activity_update(
                by=request.user, activity=activity, due_at=form.cleaned_data["due_at"]
            )
        except ServiceError as refused:
            messages.error(request, refused.messages[0])
    else:
        messages.error(request, _("Enter a valid date and time."))
    return _back(request, activity, _panel_subjects(request, activity))


def profile_tab(user, client) -> dict:
    """What the client profile's Sales tab shows: activities, deals, quotes and contracts."""
    deals = visible(Deal.objects.filter(client=client), user).select_related("stage", "owner")
    quotes = visible(Quote.objects.filter(client=client), user).select_related("owner")
    contracts = visible(Contract.objects.filter(client=client), user).select_related("owner")
    return {
        "activity_panel": queries.panel_for(user, client=client),
        "sales_deals": [(d, Money(d.value_minor, d.currency)) for d in deals[:50]],
        "sales_quotes": [(q, Money(q.total_minor, q.currency)) for q in quotes[:50]],
        "sales_contracts": [(c, Money(c.value_minor, c.currency)) for c in contracts[:50]],
    }


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        return None


def _person(request: HttpRequest):
    """The person whose calendar is shown: the user, or someone in their sight."""
    people = queries.people_in_sight(request.user)
    pk = _number(request.GET.get("user"))
    if pk is None or pk == request.user.pk:
        return request.user, people
    return get_object_or_404(people, pk=pk), people


@require_action(WORK)
def calendar(request: HttpRequest) -> HttpResponse:
    """A personal calendar: one day, a week or a month, for me or a person in my sight."""
    mode = request.GET.get("view", "week")
    if mode not in queries.CALENDAR_MODES:
        mode = "week"
    day = _date(request.GET.get("date")) or clock.today()
    person, people = _person(request)
    shown = queries.calendar_for(request.user, person, mode, day)
    return render(
        request,
        "sales/calendar.html",
        {
            "calendar": shown,
            "person": person,
            "people": people if people.count() > 1 else [],
            "modes": [
                ("day", _("Day")),
                ("week", _("Week")),
                ("month", _("Month")),
            ],
            "user_query": f"&user={person.pk}" if person != request.user else "",
            "today": clock.today(),
            "now": clock.now(),
            "weekdays": shown.days[:7],
        },
    )


@require_action(WORK)
def todo(request: HttpRequest) -> HttpResponse:
    """My to-do list: overdue, today, upcoming and what I did today; tick to complete."""
    return render(
        request, "sales/todo.html", {"todo": queries.todo_for(request.user), "now": clock.now()}
    )


def _list_filters(request: HttpRequest) -> queries.ActivityFilters:
    get = request.GET
    start, end = _date(get.get("from")), _date(get.get("to"))
    done = {"1": True, "0": False}.get(get.get("done", ""))
    kind = get.get("kind", "")
    return queries.ActivityFilters(
        kind=kind if kind in Activity.Kind.values else "",
        owner=request.user.pk if get.get("owner") == "me" else _number(get.get("owner")),
        client=_number(get.get("client")),
        lead=_number(get.get("lead")),
        deal=_number(get.get("deal")),
        start=clock.start_of_day(start) if start else None,
        end=clock.start_of_day(end + dt.timedelta(days=1)) if end else None,
        done=done,
    )


@require_action(WORK)
def activity_list(request: HttpRequest) -> HttpResponse:
    """Every activity in sight, filtered by kind, owner, period and done or not."""
    filters = _list_filters(request)
    page = Paginator(queries.activity_list(request.user, filters), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "sales/activity_list.html",
        {
            "page": page,
            "filters": filters,
            "query": request.GET,
            "kinds": Activity.Kind.choices,
            "people": queries.people_in_sight(request.user),
            "now": clock.now(),
        },
    )


@require_action(WORK)
def activity_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an activity: reschedule, correct it, or delete it while not done."""
    activity = queries.activity_get(request.user, pk)
    initial = {
        "kind": activity.kind,
        "subject": activity.subject,
        "due_at": activity.due_at,
        "duration_minutes": activity.duration_minutes,
        "outcome": activity.outcome,
        "body": activity.body,
        "remind_at": activity.remind_at,
    }
    form = ActivityEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.activity_update(
                by=request.user,
                activity=activity,
                kind=data["kind"],
                subject=data["subject"],
                due_at=data["due_at"],
                duration_minutes=data["duration_minutes"] or 0,
                outcome=data["outcome"] or "",
                body=data["body"],
                remind_at=data["remind_at"],
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Activity saved."))
            return redirect("sales:activities")
    return render(request, "sales/activity_form.html", {"form": form, "activity": activity})


@require_action(WORK)
@require_POST
def activity_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete an activity that is not done yet."""
    activity = queries.activity_get(request.user, pk)
    try:
        services.activity_delete(by=request.user, activity=activity)
    except ServiceError as refused:
        messages.error(request, refused.messages[0])
        return redirect("sales:activity_edit", pk=pk)
    messages.success(request, _("Activity deleted."))
    return redirect("sales:activities")


@require_action(WORK)
def reorder(request: HttpRequest) -> HttpResponse:
    """Clients who have not ordered for N days (a rule's, or chosen), with their owner."""
    rules = list(ReorderRule.objects.all())
    days = _number(request.GET.get("days"))
    if days is None:
        active = [r for r in rules if r.active]
        days = active[0].days if active else 90
    days = max(1, min(days, 36500))
    clients = visible(services.lapsed_clients(days), request.user).select_related("owner")
    page = Paginator(clients.order_by("last_order", "id"), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "sales/reorder.html",
        {"page": page, "days": days, "rules": rules},
    )


@require_action("sales.settings")
def reorder_rules(request: HttpRequest) -> HttpResponse:
    """The reorder rules, and a form to add one."""
    return _reorder_rule_form(request, None)


@require_action("sales.settings")
def reorder_rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a reorder rule."""
    return _reorder_rule_form(request, get_object_or_404(ReorderRule, pk=pk))


def _reorder_rule_form(request: HttpRequest, rule: ReorderRule | None) -> HttpResponse:
    form = ReorderRuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.reorder_rule_save(
                by=request.user,
                rule=rule,
                name=data["name"],
                days=data["days"],
                active=data["active"],
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Reorder rule saved."))
            return redirect("sales:reorder_rules")
    return render(
        request,
        "sales/reorder_rules.html",
        {"form": form, "rule": rule, "rules": ReorderRule.objects.all()},
    )


urlpatterns = [
    path("activities/", activity_list, name="activities"),
    path("activities/<int:pk>/", activity_edit, name="activity_edit"),
    path("activities/<int:pk>/delete/", activity_delete, name="activity_delete"),
    path("calendar/", calendar, name="calendar"),
    path("todo/", todo, name="todo"),
    path("reorder/", reorder, name="reorder"),
    path("reorder/rules/", reorder_rules, name="reorder_rules"),
    path("reorder/rules/<int:pk>/", reorder_rule_edit, name="reorder_rule_edit"),
    path("activities/new/", activity_new, name="activity_new"),
    path("activities/<int:pk>/complete/", activity_complete, name="activity_complete"),
    path("activities/<int:pk>/reschedule/", activity_reschedule, name="activity_reschedule"),
]
