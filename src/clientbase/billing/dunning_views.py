"""Pages of dunning: the scenarios an administrator sets up, the collections worklist."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from clientbase.billing import dunning, queries
from clientbase.billing.models import DunningScenario, DunningStep, Invoice
from clientbase.clients.models import ClientGroup
from clientbase.core import clock
from clientbase.core.errors import ServiceError
from clientbase.core.forms import StyledForm, add_service_errors
from clientbase.core.permissions import require_action

SET_UP = "billing.refund"  # fees and write-offs are theirs to decide


class ScenarioForm(StyledForm, forms.Form):
    """A scenario: its name, the groups that follow it, the minimum to leave collections."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    groups = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Client groups"), queryset=ClientGroup.objects.all(), required=False
    )
    minimum_percent = forms.IntegerField(
        label=gettext_lazy("Minimum payment to leave collections, %"),
        min_value=1,
        max_value=100,
        initial=100,
    )
    is_default = forms.BooleanField(
        label=gettext_lazy("For clients of other groups"), required=False
    )


class StepForm(StyledForm, forms.Form):
    """A step: how many days after the due date, what, and its mail or fee."""

    day = forms.IntegerField(label=gettext_lazy("Days after the due date"), min_value=-90)
    action = forms.ChoiceField(label=gettext_lazy("Action"), choices=DunningStep.Action.choices)
    subject = forms.CharField(
        label=gettext_lazy("Reminder subject"), required=False, max_length=200
    )
    body = forms.CharField(
        label=gettext_lazy("Reminder text ($client, $invoice, $balance, $due_on, $days)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    fee_amount = forms.DecimalField(
        label=gettext_lazy("Fixed fee"), required=False, max_digits=12, decimal_places=2
    )
    fee_percent = forms.DecimalField(
        label=gettext_lazy("Fee, percent of the balance"),
        required=False,
        max_digits=5,
        decimal_places=2,
    )


def _scenarios_page(request, *, scenario_form=None, step_forms=None, status=200):
    scenarios = DunningScenario.objects.prefetch_related("groups", "steps")
    step_forms = step_forms or {}
    rows = [(s, step_forms.get(s.pk) or StepForm(prefix=f"s{s.pk}")) for s in scenarios]
    return render(
        request,
        "billing/dunning.html",
        {"rows": rows, "scenario_form": scenario_form or ScenarioForm()},
        status=status,
    )


@require_action(SET_UP)
def scenario_list(request: HttpRequest) -> HttpResponse:
    """Scenarios and their steps; a new scenario is added from here."""
    if request.method != "POST":
        return _scenarios_page(request)
    form = ScenarioForm(request.POST)
    if form.is_valid():
        try:
            dunning.scenario_save(by=request.user, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Scenario saved."))
            return redirect("billing:dunning")
    return _scenarios_page(request, scenario_form=form, status=422)


@require_POST
@require_action(SET_UP)
def step_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a step to a scenario."""
    scenario = get_object_or_404(DunningScenario, pk=pk)
    form = StepForm(request.POST, prefix=f"s{scenario.pk}")
    if form.is_valid():
        try:
            dunning.step_add(by=request.user, scenario=scenario, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Step added."))
            return redirect("billing:dunning")
    return _scenarios_page(request, step_forms={scenario.pk: form}, status=422)


@require_POST
@require_action(SET_UP)
def step_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a step not yet taken on any invoice."""
    step = get_object_or_404(DunningStep, pk=pk)
    try:
        dunning.step_delete(by=request.user, step=step)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Step removed."))
    return redirect("billing:dunning")


@login_required
def collections_list(request: HttpRequest) -> HttpResponse:
    """Invoices handed to collections, longest overdue first, with the minimum to pay."""
    today = clock.today()
    found = (
        queries.invoices_for(request.user)
        .filter(status=Invoice.Status.COLLECTIONS)
        .order_by("due_on", "id")
    )
    page = Paginator(found, 50).get_page(request.GET.get("page"))
    rows = [
        {
            "invoice": invoice,
            "days": (today - invoice.due_on).days,
            "minimum": invoice.money(
                max(0, invoice.balance_minor - (invoice.collections_floor_minor or 0))
            ),
        }
        for invoice in page
    ]
    return render(request, "billing/collections.html", {"page": page, "rows": rows})
