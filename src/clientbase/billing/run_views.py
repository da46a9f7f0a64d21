"""Pages of the billing run: start one, watch its progress, see what it held and why."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clientbase.billing import queries
from clientbase.billing.models import BillingRun
from clientbase.billing.run import billing_run_request, days_in_advance, is_interrupted, rate
from clientbase.clients.models import Client
from clientbase.core.permissions import require_action
from clientbase.core.visibility import visible


def _progress(run: BillingRun) -> dict:
    percent = 100 if not run.total_clients else round(100 * run.done_clients / run.total_clients)
    return {
        "run": run,
        "percent": percent,
        "rate": rate(run),
        "interrupted": is_interrupted(run),
    }


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    """Billing runs, newest first, with a button to start one."""
    page = Paginator(BillingRun.objects.select_related("started_by"), 25).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "billing/run_list.html",
        {"page": page, "rows": [_progress(r) for r in page], "days": days_in_advance()},
    )


@require_POST
@require_action("billing.invoice")
def run_start(request: HttpRequest) -> HttpResponse:
    """Start a billing run for today; its workers take it from there."""
    run = billing_run_request(by=request.user, trigger="staff")
    messages.success(request, _("Billing run %(run)s started.") % {"run": run.pk})
    return redirect("billing:run", pk=run.pk)


@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: progress, then the invoices it held and the clients it could not bill."""
    run = get_object_or_404(BillingRun.objects.select_related("started_by"), pk=pk)
    if request.headers.get("HX-Request"):
        return render(request, "billing/_run_progress.html", _progress(run))
    # Only what the user may see of the clients: the counts are the company's, the names not.
    held = queries.invoices_for(request.user).filter(billing_run=run, status="draft")
    failures = run.failures.filter(
        client__in=visible(Client.objects.all(), request.user)
    ).select_related("client")
    return render(
        request,
        "billing/run_detail.html",
        {**_progress(run), "held": held[:200], "failures": failures[:200]},
    )
