"""Deal pages: kanban boards for deals and leads, the deal list, card and form, the
forecast, and pipeline settings."""

import contextlib
import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clientbase.clients.queries import client_get
from clientbase.core import clock
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.models import AuditEntry
from clientbase.core.permissions import require_action
from clientbase.core.visibility import get_visible_or_404
from clientbase.sales import deal_queries as queries
from clientbase.sales import deal_services as services
from clientbase.sales.deal_forms import DealForm, PipelineForm, StageForm, StageTaskForm, staff
from clientbase.sales.models import Deal, Lead, Pipeline, Stage, StageTask

WORK = "sales.work"
SETTINGS = "sales.settings"


def _int(value: str | None) -> int | None:
    value = value or ""
    return int(value) if value.isdigit() and len(value) < 19 else None


def _filters(request: HttpRequest) -> queries.BoardFilters:
    sort = request.GET.get("sort", "new")
    return queries.BoardFilters(
        sort=sort if sort in queries.SORTS else "new",
        owner=_int(request.GET.get("owner")),
        mine=request.GET.get("mine") == "1",
    )


def _pipeline(request: HttpRequest, kind: str) -> Pipeline:
    pipelines = queries.pipelines_of(kind)
    wanted = _int(request.GET.get("pipeline"))
    for pipeline in pipelines:
        if pipeline.pk == wanted:
            return pipeline
    if wanted is not None:
        raise Http404
    return next((p for p in pipelines if p.is_default), pipelines[0])


def _board_page(request: HttpRequest, kind: str) -> HttpResponse:
    pipeline = _pipeline(request, kind)
    filters = _filters(request)
    return render(
        request,
        "sales/board.html",
        {
            "kind": kind,
            "pipeline": pipeline,
            "pipelines": queries.pipelines_of(kind),
            "columns": queries.board(request.user, pipeline, filters),
            "filters": filters,
            "sorts": [("new", _("Newest")), ("value", _("Value")), ("close", _("Close date"))],
            "people": staff(),
            "query": _column_query(filters),
        },
    )


def _column_query(filters: queries.BoardFilters) -> str:
    parts = [f"sort={filters.sort}"]
    if filters.mine:
        parts.append("mine=1")
    elif filters.owner is not None:
        parts.append(f"owner={filters.owner}")
    return "&".join(parts)


@login_required
def deal_board(request: HttpRequest) -> HttpResponse:
    """The deals' kanban board of one pipeline."""
    return _board_page(request, Pipeline.Kind.DEAL)


@login_required
def lead_board(request: HttpRequest) -> HttpResponse:
    """The leads' kanban board."""
    return _board_page(request, Pipeline.Kind.LEAD)


@login_required
def board_column(request: HttpRequest, stage_id: int) -> HttpResponse:
    """More cards of one column, loaded as the user scrolls to its end."""
    stage = get_object_or_404(Stage.objects.select_related("pipeline"), pk=stage_id)
    filters = _filters(request)
    offset = min(_int(request.GET.get("offset")) or 0, 100_000)
    cards, more = queries.column_cards(request.user, stage, filters, offset=offset)
    return render(
        request,
        "sales/board_cards.html",
        {
            "cards": cards,
            "more": more,
            "stage": stage,
            "kind": stage.pipeline.kind,
            "next_offset": offset + len(cards),
            "query": _column_query(filters),
        },
    )


def _move(request: HttpRequest, record, stage: Stage, move) -> HttpResponse:
    kind = stage.pipeline.kind
    before = record.stage
    try:
        record = move(
            by=request.user,
            stage=stage,
            reason=request.POST.get("reason", "")[:500],
            version=_int(request.POST.get("version")),
        )
    except ConflictError as conflict:
        return JsonResponse({"message": conflict.messages[0]}, status=409)
    except ServiceError as refused:
        field = next(iter(refused.message_dict), "")
        return JsonResponse(
            {"message": refused.messages[0], "field": field, "needs_reason": field == "reason"},
            status=422,
        )
    filters = _filters(request)
    headers = queries.column_totals(request.user, stage.pipeline, filters, [before, stage])
    card = render_to_string(
        "sales/board_card.html",
        {"card": queries.with_amount(record), "kind": kind},
        request=request,
    )
    columns = {
        str(s.pk): render_to_string(
            "sales/board_totals.html", {"totals": t, "kind": kind}, request=request
        )
        for s, t in headers
    }
    return JsonResponse({"card": card, "columns": columns})


@require_POST
@require_action(WORK)
def deal_move(request: HttpRequest, pk: int) -> HttpResponse:
    """Drop a deal card on another column: saved at once or refused with a message."""
    deal = get_visible_or_404(Deal.objects.all(), request.user, pk=pk)
    stage = Stage.objects.select_related("pipeline").filter(pk=_int(request.POST.get("stage")))
    stage = stage.first()
    if stage is None:
        return JsonResponse({"message": _("Choose a stage.")}, status=422)

    def move(**kwargs):
        return services.deal_move(deal=deal, **kwargs)

    return _move(request, deal, stage, move)


@require_POST
@require_action(WORK)
def lead_move(request: HttpRequest, pk: int) -> HttpResponse:
    """Drop a lead card on another column."""
    lead = get_visible_or_404(Lead.objects.select_related("stage"), request.user, pk=pk)
    stage = Stage.objects.select_related("pipeline").filter(pk=_int(request.POST.get("stage")))
    stage = stage.first()
    if stage is None:
        return JsonResponse({"message": _("Choose a stage.")}, status=422)

    def move(**kwargs):
        return services.lead_move(lead=lead, **kwargs)

    return _move(request, lead, stage, move)


# --- list, card, form -------------------------------------------------------------------------


@login_required
def deal_list(request: HttpRequest) -> HttpResponse:
    """Deals the user may see, newest first, filtered by text, status and owner."""
    q = request.GET.get("q", "")[:200].strip()
    status = request.GET.get("status", "")
    status = status if status in Deal.Status.values else ""
    page = max(_int(request.GET.get("page")) or 1, 1)
    deals = queries.deal_list(
        request.user, q=q, status=status, owner=_int(request.GET.get("owner"))
    )
    rows = [queries.with_amount(d) for d in deals[(page - 1) * 50 : page * 50 + 1]]
    return render(
        request,
        "sales/deal_list.html",
        {
            "deals": rows[:50],
            "page": page,
            "more": len(rows) > 50,
            "q": q,
            "status": status,
            "statuses": Deal.Status.choices,
        },
    )


def _activity_panel(user, deal: Deal):
    try:
        from clientbase.sales.activity_queries import panel_for
    except ImportError:
        return None
    return panel_for(user, deal=deal)


@login_required
def deal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A deal's card: details, stages it went through, activities, quotes, actions."""
    deal = queries.deal_get(request.user, pk)
    history = [
        entry
        for entry in AuditEntry.objects.filter(
            object_type__app_label="sales", object_type__model="deal", object_id=str(deal.pk)
        )
        .select_related("actor")
        .order_by("at", "id")
        if "stage_id" in (entry.changes or {}) or entry.action == "create"
    ]
    stage_names = dict(Stage.objects.filter(pipeline=deal.pipeline).values_list("pk", "name"))
    steps = []
    for entry in history:
        change = (entry.changes or {}).get("stage_id")
        target = change.get("after") if isinstance(change, dict) else change
        steps.append({"at": entry.at, "by": entry.actor, "stage": stage_names.get(target, "—")})
    return render(
        request,
        "sales/deal_detail.html",
        {
            "deal": deal,
            "value": deal_value(deal),
            "steps": steps,
            "stages": list(deal.pipeline.stages.order_by("position", "id")),
            "quotes": list(deal.quotes.all()[:20]),
            "activity_panel": _activity_panel(request.user, deal),
            "links": _links(),
            "won_stage": deal.pipeline.stages.filter(state="won").order_by("position").first(),
            "lost_stage": deal.pipeline.stages.filter(state="lost").order_by("position").first(),
        },
    )


def _links() -> dict:
    # Quotes and messages are other areas' pages: link to them only once they exist.
    links = {}
    for key, name in [("quote", "sales:quote_new"), ("compose", "marketing:compose")]:
        with contextlib.suppress(NoReverseMatch):
            links[key] = reverse(name)
    try:
        reverse("sales:quote", args=[1])
        links["quote_detail"] = True
    except NoReverseMatch:
        pass
    return links


def deal_value(deal: Deal):
    """A deal's value as Money."""
    from clientbase.core.money import Money

    return Money(deal.value_minor, deal.currency)


def _money(data: dict):
    if data.get("value") is None:
        return None
    return services.value_of(str(data["value"]), data["currency"])


@require_action(WORK)
def deal_new(request: HttpRequest) -> HttpResponse:
    """Open a deal, for a client (?client=) or a lead (?lead=) when coming from their card."""
    client = lead = None
    if (client_id := _int(request.GET.get("client"))) is not None:
        client = client_get(request.user, client_id)
    if (lead_id := _int(request.GET.get("lead"))) is not None:
        lead = get_visible_or_404(Lead.objects.all(), request.user, pk=lead_id)
    initial = {"owner": request.user, "client": client}
    if lead is not None:
        initial.update(name=lead.company or lead.name, currency=lead.currency)
    elif client is not None:
        initial.update(currency=client.currency)
    form = DealForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            deal = services.deal_create(
                by=request.user,
                name=data["name"],
                value=_money(data),
                pipeline=data.get("pipeline"),
                expected_close=data["expected_close"],
                campaign=data["campaign"],
                client=data["client"] or client,
                lead=lead,
                owner=data["owner"],
                notes=data["notes"],
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Deal %(number)s opened.") % {"number": deal.number})
            return redirect("sales:deal", pk=deal.pk)
    return render(request, "sales/deal_form.html", {"form": form, "lead": lead, "deal": None})


@require_action(WORK)
def deal_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a deal's details."""
    deal = queries.deal_get(request.user, pk)
    initial = {
        "name": deal.name,
        "value": deal_value(deal).amount,
        "currency": deal.currency,
        "expected_close": deal.expected_close,
        "campaign": deal.campaign,
        "client": deal.client,
        "owner": deal.owner,
        "notes": deal.notes,
    }
    form = DealForm(request.POST or None, user=request.user, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.deal_update(
                by=request.user,
                deal=deal,
                version=_int(request.POST.get("version")),
                name=data["name"],
                value=_money(data),
                expected_close=data["expected_close"],
                campaign=data["campaign"],
                client=data["client"],
                owner=data["owner"],
                notes=data["notes"],
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Deal saved."))
            return redirect("sales:deal", pk=deal.pk)
    return render(request, "sales/deal_form.html", {"form": form, "deal": deal, "lead": None})


@require_POST
@require_action(WORK)
def deal_stage(request: HttpRequest, pk: int) -> HttpResponse:
    """Move a deal from its card (won, lost with a reason, or any stage)."""
    deal = queries.deal_get(request.user, pk)
    stage = Stage.objects.filter(pk=_int(request.POST.get("stage"))).first()
    if stage is None:
        raise Http404
    try:
        services.deal_move(
            by=request.user,
            deal=deal,
            stage=stage,
            reason=request.POST.get("reason", "")[:500],
            version=_int(request.POST.get("version")),
        )
    except ServiceError as refused:
        messages.error(request, refused.messages[0])
    else:
        messages.success(request, _("Deal moved to %(stage)s.") % {"stage": stage.name})
    return redirect("sales:deal", pk=deal.pk)


# --- forecast ---------------------------------------------------------------------------------


@login_required
def forecast(request: HttpRequest) -> HttpResponse:
    """Weighted value of open deals by expected-close month and owner, won beside it."""
    today = clock.today()
    start_text = request.GET.get("from", "")
    try:
        start = dt.date.fromisoformat(start_text + "-01") if start_text else today.replace(day=1)
    except ValueError:
        start = today.replace(day=1)
    pipeline = _int(request.GET.get("pipeline"))
    owner = _int(request.GET.get("owner"))
    rows = queries.forecast(request.user, start=start, months=12, pipeline=pipeline, owner=owner)
    chart = queries.forecast_chart(rows, start=start, months=12)
    return render(
        request,
        "sales/forecast.html",
        {
            "rows": rows,
            "chart": chart,
            "start": start,
            "pipeline": pipeline,
            "owner": owner,
            "pipelines": queries.pipelines_of(Pipeline.Kind.DEAL),
            "people": staff(),
        },
    )


# --- pipeline settings ------------------------------------------------------------------------


@require_action(SETTINGS)
def pipeline_list(request: HttpRequest) -> HttpResponse:
    """Pipelines for leads and deals; add one."""
    queries.pipelines_of(Pipeline.Kind.DEAL)
    queries.pipelines_of(Pipeline.Kind.LEAD)
    form = PipelineForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            pipeline = services.pipeline_save(by=request.user, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            return redirect("sales:pipeline", pk=pipeline.pk)
    pipelines = Pipeline.objects.prefetch_related("stages").order_by("kind", "position", "id")
    return render(request, "sales/pipeline_list.html", {"pipelines": pipelines, "form": form})


@require_action(SETTINGS)
def pipeline_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A pipeline's stages and their next steps: add, change, reorder, delete."""
    pipeline = get_object_or_404(Pipeline, pk=pk)
    stage_form = StageForm(prefix="stage", initial={"probability": 0, "colour": "#0d6efd"})
    task_form = StageTaskForm(prefix="task", initial={"due_in_days": 1})
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "stage":
                stage_form = StageForm(request.POST, prefix="stage")
                if stage_form.is_valid():
                    stage = None
                    if (stage_id := _int(request.POST.get("stage_id"))) is not None:
                        stage = get_object_or_404(Stage, pk=stage_id, pipeline=pipeline)
                    services.stage_save(
                        by=request.user, pipeline=pipeline, stage=stage, **stage_form.cleaned_data
                    )
                    return redirect("sales:pipeline", pk=pipeline.pk)
            elif action == "delete_stage":
                stage = get_object_or_404(
                    Stage, pk=_int(request.POST.get("stage_id")), pipeline=pipeline
                )
                services.stage_delete(by=request.user, stage=stage)
                return redirect("sales:pipeline", pk=pipeline.pk)
            elif action == "order":
                ids = [int(x) for x in request.POST.getlist("stage_ids") if x.isdigit()]
                services.stages_reorder(by=request.user, pipeline=pipeline, stage_ids=ids)
                return redirect("sales:pipeline", pk=pipeline.pk)
            elif action == "task":
                task_form = StageTaskForm(request.POST, prefix="task")
                stage = get_object_or_404(
                    Stage, pk=_int(request.POST.get("stage_id")), pipeline=pipeline
                )
                if task_form.is_valid():
                    services.stage_task_save(by=request.user, stage=stage, **task_form.cleaned_data)
                    return redirect("sales:pipeline", pk=pipeline.pk)
            elif action == "delete_task":
                task = get_object_or_404(
                    StageTask, pk=_int(request.POST.get("task_id")), stage__pipeline=pipeline
                )
                services.stage_task_delete(by=request.user, task=task)
                return redirect("sales:pipeline", pk=pipeline.pk)
            elif action == "rename":
                services.pipeline_save(
                    by=request.user,
                    pipeline=pipeline,
                    name=request.POST.get("name", ""),
                    kind=pipeline.kind,
                    active=request.POST.get("active") == "1",
                )
                return redirect("sales:pipeline", pk=pipeline.pk)
        except ServiceError as refused:
            messages.error(request, refused.messages[0])
    stages = list(pipeline.stages.prefetch_related("tasks").order_by("position", "id"))
    ids = [s.pk for s in stages]
    labels = dict(Stage.Requirement.choices)
    for index, stage in enumerate(stages):
        order = ids[:]
        if index:
            order[index - 1], order[index] = order[index], order[index - 1]
        stage.up_order = order if index else []
        stage.requires_text = ", ".join(str(labels.get(r, r)) for r in stage.requires)
    allowed = Stage.DEAL_STATES if pipeline.kind == Pipeline.Kind.DEAL else Stage.LEAD_STATES
    stage_form.fields["state"].choices = [c for c in Stage.State.choices if c[0] in allowed]
    return render(
        request,
        "sales/pipeline_detail.html",
        {
            "pipeline": pipeline,
            "stages": stages,
            "stage_form": stage_form,
            "task_form": task_form,
        },
    )


urlpatterns = [
    path("deals/board/", deal_board, name="board"),
    path("leads/board/", lead_board, name="lead_board"),
    path("boards/column/<int:stage_id>/", board_column, name="board_column"),
    path("deals/<int:pk>/move/", deal_move, name="deal_move"),
    path("leads/<int:pk>/move/", lead_move, name="lead_move"),
    path("deals/", deal_list, name="deals"),
    path("deals/new/", deal_new, name="deal_new"),
    path("deals/<int:pk>/", deal_detail, name="deal"),
    path("deals/<int:pk>/edit/", deal_edit, name="deal_edit"),
    path("deals/<int:pk>/stage/", deal_stage, name="deal_stage"),
    path("forecast/", forecast, name="forecast"),
    path("pipelines/", pipeline_list, name="pipelines"),
    path("pipelines/<int:pk>/", pipeline_detail, name="pipeline"),
]
