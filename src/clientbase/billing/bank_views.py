"""Pages of bank statements: import a file, then clear the suspense list in two clicks."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from clientbase.billing import queries
from clientbase.billing.bank import (
    MAX_STATEMENT_BYTES,
    bank_payment_assign,
    bank_payment_ignore,
    statement_import,
    suggestions,
)
from clientbase.billing.models import BankPayment, BankStatement
from clientbase.clients.models import Client
from clientbase.core.errors import ServiceError
from clientbase.core.forms import StyledForm, add_service_errors
from clientbase.core.permissions import require_action
from clientbase.core.visibility import visible

PAYMENT = "billing.payment"


class StatementForm(StyledForm, forms.Form):
    """A statement file: CSV, 1C client-bank exchange or camt.053."""

    file = forms.FileField(
        label=gettext_lazy("Statement file"),
        help_text=gettext_lazy("CSV, 1C client-bank exchange (.txt) or ISO 20022 camt.053 (.xml)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.xml"}),
    )


@require_action(PAYMENT)
def statement_list(request: HttpRequest) -> HttpResponse:
    """Import a statement; the statements imported so far."""
    form = StatementForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > MAX_STATEMENT_BYTES:  # refused before it is read into memory
                raise ServiceError(_("The file is too large."), field="file")
            statement = statement_import(by=request.user, data=upload.read(), filename=upload.name)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(
                request,
                _("Posted: %(posted)s. Waiting in suspense: %(suspense)s. Already imported: "
                  "%(duplicates)s.")
                % {"posted": statement.posted, "suspense": statement.suspense,
                   "duplicates": statement.duplicates},
            )  # fmt: skip
            return redirect("billing:statement", pk=statement.pk)
    page = Paginator(BankStatement.objects.select_related("imported_by"), 25).get_page(
        request.GET.get("page")
    )
    waiting = BankPayment.objects.filter(state=BankPayment.State.SUSPENSE).count()
    status = 422 if form.errors else 200
    return render(
        request,
        "billing/statement_list.html",
        {"form": form, "page": page, "waiting": waiting},
        status=status,
    )


@require_action(PAYMENT)
def statement_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Every line of one statement and what became of it."""
    statement = get_object_or_404(BankStatement, pk=pk)
    items = Paginator(
        statement.items.select_related("invoice", "payment").order_by("line_no"), 100
    ).get_page(request.GET.get("page"))
    return render(request, "billing/statement_detail.html", {"statement": statement, "page": items})


@require_action(PAYMENT)
def suspense_list(request: HttpRequest) -> HttpResponse:
    """Bank payments waiting for a clerk, oldest first, each with its likely invoices."""
    page = Paginator(
        BankPayment.objects.filter(state=BankPayment.State.SUSPENSE).order_by("booked_on", "id"),
        25,
    ).get_page(request.GET.get("page"))
    invoices = queries.invoices_for(request.user)
    rows = [(item, suggestions(item, invoices)) for item in page]
    return render(request, "billing/suspense_list.html", {"page": page, "rows": rows})


@require_POST
@require_action(PAYMENT)
def suspense_assign(request: HttpRequest, pk: int) -> HttpResponse:
    """Post a waiting payment to the invoice chosen (by button or by number), or to a
    client's credit balance."""
    item = get_object_or_404(BankPayment, pk=pk)
    invoices = queries.invoices_for(request.user)
    invoice = client = None
    if chosen := (request.POST.get("invoice") or "").strip():
        # A tampered id finds nothing rather than failing.
        invoice = invoices.filter(pk=int(chosen)).first() if chosen.isdigit() else None
        if invoice is None:
            messages.error(request, _("That invoice is not among those you may see."))
            return redirect("billing:suspense")
    elif number := (request.POST.get("number") or "").strip():
        invoice = invoices.filter(number=number).first()
        if invoice is None:
            client = (
                visible(Client.objects.all(), request.user).filter(number__iexact=number).first()
            )
        if invoice is None and client is None:
            messages.error(
                request, _("No invoice or client numbered %(number)s.") % {"number": number}
            )
            return redirect("billing:suspense")
    try:
        bank_payment_assign(by=request.user, item=item, invoice=invoice, client=client)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        target = invoice.number if invoice else client.name
        messages.success(
            request,
            _("%(amount)s posted to %(target)s.") % {"amount": item.amount, "target": target},
        )
    return redirect("billing:suspense")


@require_POST
@require_action(PAYMENT)
def suspense_ignore(request: HttpRequest, pk: int) -> HttpResponse:
    """Set a waiting line aside: not a client's payment."""
    item = get_object_or_404(BankPayment, pk=pk)
    try:
        bank_payment_ignore(by=request.user, item=item, reason=request.POST.get("reason", ""))
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("The line was set aside."))
    return redirect("billing:suspense")
