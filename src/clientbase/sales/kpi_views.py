"""Pages of the sales module: KPI targets and the KPI report (SAL-8)."""

from collections.abc import Iterator
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, re_path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clientbase.clients.io import neutralise
from clientbase.clients.io_views import _download
from clientbase.core import clock
from clientbase.core.errors import ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.permissions import require_action
from clientbase.sales import kpi_queries as queries
from clientbase.sales.kpi_forms import ReportForm, TargetForm, target_initial
from clientbase.sales.kpi_services import kpi_target_delete, kpi_target_save
from clientbase.sales.models import KpiTarget

KPI = queries.KPI
TARGETS_PER_PAGE = 50


def _kpi_reader(view):
    @login_required
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not queries.may_read_kpi(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return guarded


def report_subject(user, key: str) -> queries.Subject:
    """The subject a key names: 404 out of sight, 403 for someone else without `sales.kpi`."""
    subject = queries.subject_for(user, key)
    if subject is None:
        raise Http404
    if subject.user != user and not user.has_perm(KPI):
        raise PermissionDenied
    return subject


def _report_form(request: HttpRequest) -> ReportForm:
    this_month = queries.month_period(clock.today())
    defaults = {
        "who": f"u{request.user.pk}",
        "start": this_month.start.isoformat(),
        "end": this_month.end.isoformat(),
    }
    data = defaults | {k: v for k, v in request.GET.items() if k in defaults and v}
    return ReportForm(data, viewer=request.user, others=request.user.has_perm(KPI))


def _chart(report: queries.KpiReport) -> dict[str, Any]:
    """Percent achieved per measure with a target, and for a team each member's counts."""
    with_target = [r for r in report.rows if r.percent is not None]
    chart: dict[str, Any] = {
        "labels": [r.label for r in with_target],
        "percent": [float(r.percent) for r in with_target],
        "percentLabel": _("Achieved, %"),
        "members": None,
    }
    if report.members:
        counted = [r.metric for r in report.rows if r.count is not None]
        labels = dict(queries.Metric.choices)
        chart["members"] = {
            "labels": [m.user.display_name for m in report.members],
            "series": [
                {
                    "label": str(labels[metric]),
                    "data": [
                        next(r.count for r in m.rows if r.metric == metric) for m in report.members
                    ],
                }
                for metric in counted
                if any(r.count for m in report.members for r in m.rows if r.metric == metric)
            ],
        }
    return chart


@_kpi_reader
def kpi(request: HttpRequest) -> HttpResponse:
    """The KPI report: each measure's actual against its target for a person or team."""
    form = _report_form(request)
    context: dict[str, Any] = {
        "form": form,
        "shortcuts": [
            (label, urlencode({"who": form.data["who"], "start": p.start, "end": p.end}))
            for label, p in queries.shortcuts(clock.today())
        ],
        "definitions": [(label, queries.DEFINITIONS[m]) for m, label in queries.Metric.choices],
        "commission_definition": queries.COMMISSION_DEFINITION,
        "team_definition": queries.TEAM_DEFINITION,
    }
    if not form.is_valid():
        if "who" in form.errors and "who" in request.GET:
            report_subject(request.user, request.GET["who"])  # 404 or 403 before a 400
        return render(request, "sales/kpi_report.html", context, status=400)
    subject = report_subject(request.user, form.cleaned_data["who"])
    report = queries.kpi_report(request.user, subject, form.period)
    context |= {
        "report": report,
        "chart": _chart(report),
        "export_query": request.GET.urlencode(),
    }
    return render(request, "sales/kpi_report.html", context)


def _money_text(amounts) -> str:
    return "; ".join(str(m) for m in amounts)


def _report_cells(report: queries.KpiReport) -> Iterator[list[Any]]:
    yield [
        _("Person or team"),
        _("Measure"),
        _("Target"),
        _("Actual"),
        _("Achieved, %"),
        _("Commission"),
    ]
    owners = [(report.subject.name, report.rows)] + [
        (m.user.display_name, m.rows) for m in report.members
    ]
    for name, rows in owners:
        for row in rows:
            if row.is_money:
                target = str(row.target_money) if row.target_money else ""
                actual = _money_text(row.revenue)
            else:
                target = row.target.target if row.target else ""
                actual = row.count
            yield [
                neutralise(name),
                row.label,
                target,
                actual,
                row.percent if row.percent is not None else "",
                _money_text(row.commission),
            ]


@_kpi_reader
def kpi_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The report's table as XLSX or CSV."""
    form = _report_form(request)
    if not form.is_valid():
        return redirect(reverse("sales:kpi") + "?" + request.GET.urlencode())
    subject = report_subject(request.user, form.cleaned_data["who"])
    report = queries.kpi_report(request.user, subject, form.period)
    name = f"kpi-{subject.key}-{report.period.start}-{report.period.end}"
    return _download(_report_cells(report), fmt, filename=name, title=_("KPI"))


# --- targets ---------------------------------------------------------------------------------


@require_action(KPI)
def kpi_targets(request: HttpRequest) -> HttpResponse:
    """Targets of the people and teams in sight, newest period first."""
    page = Paginator(queries.targets_for(request.user), TARGETS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "sales/kpi_targets.html", {"page": page, "targets": page.object_list})


def _subject_fields(request: HttpRequest, key: str) -> dict:
    subject = queries.subject_for(request.user, key)
    if subject is None:
        raise ServiceError(_("Choose a person or team you may see."), field="who")
    return {"user": subject.user, "org_unit": subject.team}


# The service names the fields as the model does; the form as a person reads them.
_FORM_FIELDS = {"target": "value", "user": "who", "org_unit": "who"}


def _as_form_fields(refused: ServiceError) -> ServiceError:
    errors: dict[str, list] = {}
    for name, found in refused.message_dict.items():
        errors.setdefault(_FORM_FIELDS.get(name, name), []).extend(found)
    return ServiceError(errors=errors)


def _target_page(request: HttpRequest, target: KpiTarget | None) -> HttpResponse:
    if request.method == "POST":
        form = TargetForm(request.POST, viewer=request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                kpi_target_save(
                    by=request.user,
                    target=target,
                    **_subject_fields(request, data["who"]),
                    metric=data["metric"],
                    period_start=data["period_start"],
                    period_end=data["period_end"],
                    value=data["value"],
                    currency=data["currency"],
                    commission_percent=data["commission_percent"],
                )
            except ServiceError as refused:
                add_service_errors(form, _as_form_fields(refused))
            else:
                messages.success(request, _("Target saved."))
                return redirect("sales:kpi_targets")
        status = 400
    else:
        initial = target_initial(target) if target else _new_target_initial(request)
        form = TargetForm(initial=initial, viewer=request.user)
        status = 200
    context = {
        "form": form,
        "target": target,
        "shortcuts": [(label, p) for label, p in queries.shortcuts(clock.today())],
    }
    return render(request, "sales/kpi_target_form.html", context, status=status)


def _new_target_initial(request: HttpRequest) -> dict:
    period = queries.month_period(clock.today())
    initial = {"period_start": period.start, "period_end": period.end}
    for key in ("who", "metric", "period_start", "period_end"):
        if request.GET.get(key):
            initial[key] = request.GET[key]
    return initial


def _target(request: HttpRequest, pk: int) -> KpiTarget:
    target = queries.targets_for(request.user).filter(pk=pk).first()
    if target is None:
        raise Http404
    return target


@require_action(KPI)
def kpi_target_add(request: HttpRequest) -> HttpResponse:
    """Set a new target."""
    return _target_page(request, None)


@require_action(KPI)
def kpi_target_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a target."""
    return _target_page(request, _target(request, pk))


@require_action(KPI)
@require_POST
def kpi_target_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a target."""
    target = _target(request, pk)
    try:
        kpi_target_delete(by=request.user, target=target)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Target removed."))
    return redirect("sales:kpi_targets")


urlpatterns = [
    path("kpi/", kpi, name="kpi"),
    re_path(r"^kpi/export\.(?P<fmt>csv|xlsx)$", kpi_export, name="kpi_export"),
    path("kpi/targets/", kpi_targets, name="kpi_targets"),
    path("kpi/targets/new/", kpi_target_add, name="kpi_target_add"),
    path("kpi/targets/<int:pk>/", kpi_target_edit, name="kpi_target_edit"),
    path("kpi/targets/<int:pk>/delete/", kpi_target_remove, name="kpi_target_delete"),
]
