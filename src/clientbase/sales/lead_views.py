"""Pages of the sales module: lead area (leads, the lead card, conversion, distribution rules
and their log, web forms and the public web form endpoint)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from clientbase.clients.queries import client_get
from clientbase.clients.services import normalized_for_duplicates
from clientbase.core.errors import ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.money import Money
from clientbase.core.permissions import require_action
from clientbase.sales import lead_queries as queries
from clientbase.sales import lead_services as services
from clientbase.sales.lead_forms import (
    DUPLICATE_CHECKED,
    ConvertForm,
    DistributionRuleForm,
    LeadContactForm,
    LeadForm,
    WebFormForm,
)
from clientbase.sales.models import DistributionRule, Lead, Stage, WebForm, WebFormSubmission

WORK = "sales.work"
SETTINGS = "sales.settings"
PAGE_SIZE = 25
MOVES = ("in_progress", "appointment", "dead")


def _filters(request: HttpRequest) -> queries.LeadFilters:
    get = request.GET
    return queries.LeadFilters(
        status=get.get("status", "")[:20],
        owner=get.get("owner", "")[:19],
        source=get.get("source", "")[:100],
        campaign=get.get("campaign", "")[:100],
        q=get.get("q", "")[:200],
    )


@require_action(WORK)
def lead_list(request: HttpRequest) -> HttpResponse:
    """Leads in sight, filtered by status, owner, source, campaign or text, 25 a page."""
    filters = _filters(request)
    found = queries.lead_list(request.user, filters)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    kept = {k: v for k, v in request.GET.items() if k != "page" and v}
    sources, campaigns = queries.sources_and_campaigns(request.user)
    return render(
        request,
        "sales/lead_list.html",
        {
            "page": page,
            "filters": filters,
            "query": urlencode(kept),
            "statuses": Lead.Status.choices,
            "sources": sources,
            "campaigns": campaigns,
            "filtered": bool(kept),
        },
    )


@require_action(WORK)
def lead_new(request: HttpRequest) -> HttpResponse:
    """Add a lead; the duplicate check runs while typing and again on save."""
    form = LeadForm(request.POST or None, initial={"owner": request.user.pk, "kind": "company"})
    if request.method == "POST" and form.is_valid():
        try:
            lead = services.lead_create(by=request.user, **form.service_fields())
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Lead %(number)s added.") % {"number": lead.number})
            _warn_duplicates(request, lead)
            if queries.leads_for(request.user).filter(pk=lead.pk).exists():
                return redirect("sales:lead", lead.pk)
            return redirect("sales:leads")
    return render(
        request,
        "sales/lead_form.html",
        {"form": form, "lead": None},
        status=400 if form.is_bound else 200,
    )


def _warn_duplicates(request: HttpRequest, lead: Lead) -> None:
    """Phone and tax id matches do not stop a save, but the seller should know of them."""
    found = queries.lead_duplicates(
        request.user, phone=lead.phone, tax_id=lead.tax_id, exclude_id=lead.pk
    )
    named = [
        f"{d.record.number} {d.record.name}" if d.visible else _("a record outside your view")
        for d in found
    ]
    if named:
        messages.warning(
            request,
            _("The same phone or tax id is already on: %(records)s.")
            % {"records": ", ".join(dict.fromkeys(named))},
        )


@require_action(WORK)
def lead_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a lead's details; a change made meanwhile by someone else is refused."""
    lead = queries.lead_get(request.user, pk)
    initial = {**LeadForm.initial_for(lead), "version": lead.version}
    form = LeadForm(request.POST or None, initial=initial, lead=lead)
    if request.method == "POST" and form.is_valid():
        try:
            services.lead_update(
                by=request.user,
                lead=lead,
                version=form.cleaned_data.get("version"),
                **form.service_fields(),
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Lead saved."))
            _warn_duplicates(request, lead)
            return redirect("sales:lead", lead.pk)
    return render(
        request,
        "sales/lead_form.html",
        {"form": form, "lead": lead},
        status=400 if form.is_bound else 200,
    )


def _card_context(request: HttpRequest, lead: Lead, **extra) -> dict:
    from clientbase.sales.activity_queries import panel_for

    stages = {s.state: s for s in reversed(list(lead.stage.pipeline.stages.all()))}
    return {
        "lead": lead,
        "contacts": list(lead.contacts.all()),
        "activity_panel": panel_for(request.user, lead=lead),
        "deals": queries.deals_of(request.user, lead),
        "quotes": queries.quotes_of(request.user, lead),
        "moves": [stages[state] for state in MOVES if state in stages],
        "potential": Money(lead.potential_minor, lead.currency),
        "contact_form": extra.pop("contact_form", None) or LeadContactForm(),
        "is_open": lead.status in services.OPEN_STATUSES,
        **extra,
    }


@require_action(WORK)
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The lead card: everything about the lead on one screen."""
    lead = queries.lead_get(request.user, pk)
    return render(request, "sales/lead_detail.html", _card_context(request, lead))


@require_action(WORK)
@require_POST
def lead_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Move the lead to in progress, appointment or dead (with a reason)."""
    from clientbase.sales.deal_services import lead_move

    lead = queries.lead_get(request.user, pk)
    stage_id = request.POST.get("stage", "")
    stage = Stage.objects.filter(
        pk=int(stage_id) if stage_id.isdigit() and len(stage_id) < 19 else 0,
        pipeline_id=lead.stage.pipeline_id,
    ).first()
    if stage is None:
        raise Http404
    version = request.POST.get("version", "")
    try:
        lead_move(
            by=request.user,
            lead=lead,
            stage=stage,
            reason=request.POST.get("reason", "")[:200],
            version=int(version) if version.isdigit() else None,
        )
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Lead moved to %(stage)s.") % {"stage": stage.name})
    return redirect("sales:lead", lead.pk)


@require_action(WORK)
@require_POST
def lead_contact_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a person to the lead's card."""
    lead = queries.lead_get(request.user, pk)
    form = LeadContactForm(request.POST)
    if form.is_valid():
        try:
            services.lead_contact_add(by=request.user, lead=lead, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Contact added."))
            return redirect("sales:lead", lead.pk)
    return render(
        request,
        "sales/lead_detail.html",
        _card_context(request, lead, contact_form=form),
        status=400,
    )


@require_action(WORK)
@require_POST
def lead_contact_remove(request: HttpRequest, pk: int, contact_pk: int) -> HttpResponse:
    """Remove a person from the lead's card."""
    lead = queries.lead_get(request.user, pk)
    contact = queries.lead_contact_get(request.user, lead, contact_pk)
    services.lead_contact_remove(by=request.user, contact=contact)
    messages.success(request, _("Contact removed."))
    return redirect("sales:lead", lead.pk)


@require_action(WORK)
def lead_convert(request: HttpRequest, pk: int) -> HttpResponse:
    """Make the lead a client (and a deal), or attach it to the client that has its email."""
    lead = queries.lead_get(request.user, pk)
    if lead.client_id:
        messages.info(request, _("This lead is already a client."))
        return redirect("clients:detail", lead.client_id)
    potential = Money(lead.potential_minor, lead.currency)
    form = ConvertForm(
        request.POST or None,
        initial={"deal_name": str(lead), "deal_value": potential.amount if potential else None},
    )
    existing = None
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if data["existing_client"]:
            existing = client_get(request.user, data["existing_client"])
        try:
            value = (
                Money.from_decimal(data["deal_value"], lead.currency)
                if data["deal_value"] is not None
                else None
            )
            result = services.lead_convert(
                by=request.user,
                lead=lead,
                create_deal=data["create_deal"],
                deal_name=data["deal_name"],
                deal_value=value,
                existing_client=existing,
            )
        except services.ClientExists as clash:
            existing = clash.client
            form.add_error(None, clash.messages[0])
            status = 409
        except ServiceError as refused:
            add_service_errors(form, refused)
            existing, status = None, 400
        else:
            messages.success(
                request,
                _("Lead %(number)s is now client %(client)s.")
                % {"number": lead.number, "client": result.client.number},
            )
            return redirect("clients:detail", result.client.pk)
    return render(
        request,
        "sales/lead_convert.html",
        {"lead": lead, "form": form, "existing": existing},
        status=status,
    )


@login_required
def lead_duplicates(request: HttpRequest) -> HttpResponse:
    """While typing: open leads and clients that already have this email, phone or tax id."""
    field = next((n for n in DUPLICATE_CHECKED if n in request.GET), "")
    found = []
    if field:
        value = normalized_for_duplicates(
            field,
            request.GET[field],
            country=request.GET.get("country", ""),
            kind=request.GET.get("kind", ""),
        )
        if value:
            exclude = request.GET.get("exclude", "")
            found = queries.lead_duplicates(
                request.user,
                **{field: value},
                exclude_id=int(exclude) if exclude.isdigit() and len(exclude) < 19 else None,
            )
    return render(request, "sales/lead_duplicates.html", {"duplicates": found})


# --- distribution ---------------------------------------------------------------------------


@require_action(SETTINGS)
def distribution(request: HttpRequest) -> HttpResponse:
    """The distribution rules, in the order they are tried."""
    rules = DistributionRule.objects.prefetch_related("members").select_related("last_assignee")
    return render(request, "sales/distribution_list.html", {"rules": rules})


@require_action(SETTINGS)
def distribution_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Create or change a distribution rule."""
    rule = get_object_or_404(DistributionRule, pk=pk) if pk else None
    initial = {}
    if rule is not None:
        initial = {
            "name": rule.name,
            "source": rule.source,
            "campaign": rule.campaign,
            "method": rule.method,
            "members": list(rule.members.all()),
            "position": rule.position,
            "active": rule.active,
        }
    form = DistributionRuleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.distribution_rule_save(
                by=request.user,
                rule=rule,
                name=data["name"],
                members=list(data["members"]),
                source=data["source"],
                campaign=data["campaign"],
                method=data["method"],
                position=data["position"],
                active=data["active"],
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Distribution rule saved."))
            return redirect("sales:distribution")
    return render(
        request,
        "sales/distribution_form.html",
        {"form": form, "rule": rule},
        status=400 if form.is_bound else 200,
    )


@require_action(SETTINGS)
@require_POST
def distribution_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a rule; the log keeps what it did."""
    rule = get_object_or_404(DistributionRule, pk=pk)
    services.distribution_rule_delete(by=request.user, rule=rule)
    messages.success(request, _("Distribution rule removed."))
    return redirect("sales:distribution")


@require_action(SETTINGS)
def distribution_log(request: HttpRequest) -> HttpResponse:
    """Who got which lead, when, by which rule, on arrival or by the schedule."""
    page = Paginator(queries.distribution_log(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "sales/distribution_log.html", {"page": page})


# --- web forms ------------------------------------------------------------------------------


@require_action(SETTINGS)
def webforms(request: HttpRequest) -> HttpResponse:
    """The web forms, with the address and fields a site posts to."""
    forms_ = WebForm.objects.select_related("org_unit")
    return render(request, "sales/webform_list.html", {"webforms": forms_})


def _webform_initial(form: WebForm) -> dict:
    return {
        name: getattr(form, name)
        for name in (
            "name",
            "source",
            "campaign",
            "org_unit",
            "currency",
            "per_hour_limit",
            "active",
        )
    }


def _show_secret(request: HttpRequest, issued: services.IssuedWebForm) -> HttpResponse:
    return render(
        request,
        "sales/webform_secret.html",
        {"webform": issued.form, "secret": issued.secret},
    )


@require_action(SETTINGS)
def webform_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Create a web form (its secret is shown once) or change one's settings."""
    webform = get_object_or_404(WebForm, pk=pk) if pk else None
    initial = _webform_initial(webform) if webform else {"org_unit": request.user.org_unit_id}
    form = WebFormForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data["currency"] = data["currency"].strip().upper()
        try:
            if webform is None:
                active = data.pop("active")
                issued = services.webform_create(by=request.user, **data)
                if not active:
                    services.webform_update(by=request.user, form=issued.form, active=False)
                return _show_secret(request, issued)
            services.webform_update(by=request.user, form=webform, **data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Web form saved."))
            return redirect("sales:webforms")
    submissions = (
        WebFormSubmission.objects.filter(form=webform).select_related("lead")[:20]
        if webform
        else []
    )
    return render(
        request,
        "sales/webform_form.html",
        {"form": form, "webform": webform, "submissions": submissions},
        status=400 if form.is_bound else 200,
    )


@require_action(SETTINGS)
@require_POST
def webform_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    """A new secret for a web form; the old one stops working."""
    webform = get_object_or_404(WebForm, pk=pk)
    return _show_secret(request, services.webform_rotate(by=request.user, form=webform))


def _submitted_data(request: HttpRequest) -> tuple[dict, bool]:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            data = None
        return (data if isinstance(data, dict) else None), True
    return request.POST.dict(), False


def _answer(is_json: bool, request, status: int, body: dict, template: str = "") -> HttpResponse:
    if is_json or not template:
        return JsonResponse(body, status=status)
    return render(request, template, body, status=status)


@csrf_exempt
@require_POST
def webform_submit(request: HttpRequest) -> HttpResponse:
    """The public endpoint a site's form posts to (no sign-in): a new lead, once per person."""
    data, is_json = _submitted_data(request)
    if data is None:
        return JsonResponse({"errors": {"": [_("Send a JSON object.")]}}, status=400)
    secret = request.headers.get("X-Form-Key") or str(data.pop("key", "") or "")
    webform = services.webform_find(secret)
    if webform is None:
        return JsonResponse({"error": _("No such form.")}, status=404)
    try:
        result = services.webform_submit(
            form=webform, data=data, ip=request.META.get("REMOTE_ADDR") or None
        )
    except services.Throttled as throttled:
        response = JsonResponse({"error": _("Too many submissions: try again later.")}, status=429)
        response["Retry-After"] = str(throttled.retry_after)
        return response
    except ServiceError as refused:
        return _answer(
            is_json,
            request,
            400,
            {"errors": refused.message_dict},
            "sales/webform_thanks.html",
        )
    body = {"status": "received", "duplicate": result.duplicate}
    return _answer(is_json, request, 201 if is_json else 200, body, "sales/webform_thanks.html")


urlpatterns: list = [
    path("leads/", lead_list, name="leads"),
    path("leads/new/", lead_new, name="lead_new"),
    path("leads/duplicates/", lead_duplicates, name="lead_duplicates"),
    path("leads/<int:pk>/", lead_detail, name="lead"),
    path("leads/<int:pk>/edit/", lead_edit, name="lead_edit"),
    path("leads/<int:pk>/convert/", lead_convert, name="lead_convert"),
    path("leads/<int:pk>/status/", lead_status, name="lead_status"),
    path("leads/<int:pk>/contacts/", lead_contact_add, name="lead_contact_add"),
    path(
        "leads/<int:pk>/contacts/<int:contact_pk>/remove/",
        lead_contact_remove,
        name="lead_contact_remove",
    ),
    path("distribution/", distribution, name="distribution"),
    path("distribution/new/", distribution_edit, name="distribution_new"),
    path("distribution/<int:pk>/", distribution_edit, name="distribution_edit"),
    path("distribution/<int:pk>/delete/", distribution_delete, name="distribution_delete"),
    path("distribution/log/", distribution_log, name="distribution_log"),
    path("webforms/", webforms, name="webforms"),
    path("webforms/new/", webform_edit, name="webform_new"),
    path("webforms/<int:pk>/", webform_edit, name="webform_edit"),
    path("webforms/<int:pk>/rotate/", webform_rotate, name="webform_rotate"),
    path("webforms/submit/", webform_submit, name="webform_submit"),
]
