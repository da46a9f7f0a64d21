"""Dashboard, global search, audit log, automation log and health check."""

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import user_has_device

from clientbase.accounts.models import User
from clientbase.core import clock, customfields
from clientbase.core.api_base import problem_response
from clientbase.core.cron import JOBS, enqueue_jobs
from clientbase.core.errors import ServiceError
from clientbase.core.forms import CustomFieldForm, add_service_errors
from clientbase.core.models import AuditEntry, CronRun, CustomField, Event
from clientbase.core.permissions import require_action
from clientbase.core.registry import COUNTERS, SEARCH_SOURCES
from clientbase.core.visibility import visible

SEARCH_LIMIT = 8


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The first page: each module's counters and the latest events the user may see."""
    user = request.user
    counters = [
        {"counter": c, "value": c.count(user)}
        for c in COUNTERS
        if c.permission is None or user.has_perm(c.permission)
    ]
    recent = visible(Event.objects.select_related("actor", "client"), user)[:10]
    last_runs = []
    if user.has_perm("core.view_automation"):
        last_runs = [
            (job, run)
            for job in JOBS.values()
            if (run := CronRun.objects.filter(job=job.name).order_by("-started_at").first())
        ]
    return render(
        request,
        "core/dashboard.html",
        {
            "counters": counters,
            "recent": recent,
            "two_factor_on": user_has_device(user, confirmed=True),
            "token_count": user.api_tokens.filter(revoked_at__isnull=True).count(),
            "last_runs": last_runs,
        },
    )


@login_required
def search(request: HttpRequest) -> HttpResponse:
    """The global search box: every module's matches the user may see, grouped."""
    text = request.GET.get("q", "").strip()
    groups = []
    if text:
        for source in SEARCH_SOURCES:
            hits = source.find(request.user, text, SEARCH_LIMIT)
            if hits:
                groups.append({"label": source.label, "hits": hits})
    # The navbar box asks with htmx while typing: answer with the suggestions only.
    template = (
        "core/_search_results.html" if request.headers.get("HX-Request") else "core/search.html"
    )
    return render(request, template, {"q": text, "groups": groups})


def _parse_day(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


@require_action("core.view_audit")
def audit_log(request: HttpRequest) -> HttpResponse:
    """Who changed what: filter by user, record type and date range."""
    entries = visible(AuditEntry.objects.select_related("actor", "object_type"), request.user)
    actor = request.GET.get("user", "")
    object_type = request.GET.get("type", "")
    since = _parse_day(request.GET.get("from", ""))
    until = _parse_day(request.GET.get("to", ""))
    if actor.isdigit():
        entries = entries.filter(actor_id=int(actor))
    if object_type.isdigit():
        entries = entries.filter(object_type_id=int(object_type))
    if since:
        entries = entries.filter(at__gte=clock.start_of_day(since))
    if until:
        entries = entries.filter(at__lt=clock.start_of_day(until + dt.timedelta(days=1)))
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    used_types = AuditEntry.objects.values_list("object_type", flat=True).distinct()
    return render(
        request,
        "core/audit_log.html",
        {
            "page": page,
            "users": User.objects.order_by("username"),
            "types": ContentType.objects.filter(pk__in=used_types).order_by("model"),
            "filters": {
                "user": actor,
                "type": object_type,
                "from": request.GET.get("from", ""),
                "to": request.GET.get("to", ""),
            },
        },
    )


@require_action("core.view_automation")
def automation_log(request: HttpRequest) -> HttpResponse:
    """The daily automation: registered jobs and every run with its outcome."""
    page = Paginator(CronRun.objects.all(), 50).get_page(request.GET.get("page"))
    return render(request, "core/automation_log.html", {"page": page, "jobs": JOBS.values()})


@require_action("core.run_automation")
@require_POST
def automation_run(request: HttpRequest) -> HttpResponse:
    """Queue today's daily jobs for the workers now."""
    count = enqueue_jobs()
    messages.success(
        request,
        ngettext(
            "%(count)d job queued; the worker runs it and it appears below.",
            "%(count)d jobs queued; the worker runs them and they appear below.",
            count,
        )
        % {"count": count},
    )
    return redirect("core:automation_log")


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers: 200 when the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as failure:  # any database failure means "not healthy"
        return JsonResponse({"status": "error", "database": str(failure)[:200]}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def _for_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    """Themed 403 (a problem document under /api/)."""
    if _for_api(request):
        return problem_response(403, "Forbidden", "Your role does not allow this action.")
    return render(request, "403.html", status=403)


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    """Themed 404 (a problem document under /api/)."""
    if _for_api(request):
        return problem_response(404, "Not found", "No such record, or not one you may see.")
    return render(request, "404.html", status=404)


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    """400 for requests Django refuses before any view (e.g. too large)."""
    if _for_api(request):
        return problem_response(400, "Bad request", "The request could not be read.")
    return render(request, "400.html", status=400)


def server_error(request: HttpRequest) -> HttpResponse:
    """Themed 500, rendered without the database or the user (either may be what failed)."""
    if _for_api(request):
        return problem_response(500, "Server error", "Nothing was saved; try again later.")
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)


@require_action("core.manage_custom_fields")
def custom_field_list(request: HttpRequest) -> HttpResponse:
    """The custom fields administrators have defined, in form order."""
    fields = list(CustomField.objects.order_by("applies_to", "position", "id"))
    conditions = customfields.condition_fields()
    for field in fields:
        field.condition_label = conditions.get(field.required_when_field, field.required_when_field)
    return render(request, "core/custom_field_list.html", {"fields": fields})


@require_action("core.manage_custom_fields")
def custom_field_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Add a custom field, or change one."""
    field = get_object_or_404(CustomField, pk=pk) if pk else None
    form = CustomFieldForm(request.POST or None, instance=field)
    if request.method == "POST" and form.is_valid():
        try:
            field = customfields.custom_field_save(
                field=field, by=request.user, **form.field_data()
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Custom field %(label)s saved.") % {"label": field.label})
            return redirect("core:custom_field_list")
    return render(request, "core/custom_field_form.html", {"form": form, "subject": field})
