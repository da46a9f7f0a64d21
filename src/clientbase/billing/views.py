"""Billing pages: orders, services with upgrades, invoices with the bills search, payments.

Thin: each view parses a form, calls one service and shows its refusal at the field.
"""

from __future__ import annotations

from babel.numbers import format_currency
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clientbase.billing import queries, services
from clientbase.billing.credit import limits_of
from clientbase.billing.forms import (
    SERVICE_STATUS_CHOICES,
    BillSearchForm,
    CancelAtEndForm,
    ClientPaymentForm,
    CreditAdjustForm,
    CreditApplyForm,
    CreditLimitForm,
    CreditNoteForm,
    CreditPayoutForm,
    CreditTopUpForm,
    InvoiceDatesForm,
    LineForm,
    OrderForm,
    PaymentForm,
    ProductChoiceForm,
    ReasonForm,
    RefundForm,
    SendForm,
    ServiceActionForm,
    ServiceDatesForm,
    TransferForm,
    _products,
)
from clientbase.billing.ledger import credit_held
from clientbase.billing.models import Invoice, InvoiceLine, LedgerEntry, Order, OrderItem
from clientbase.billing.run import next_renewal_price
from clientbase.billing.services import ItemSpec, LineSpec, parse_money
from clientbase.clients.models import Client
from clientbase.clients.services import history_ids
from clientbase.core import clock
from clientbase.core.errors import ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.money import Money
from clientbase.core.permissions import require_action
from clientbase.core.visibility import get_visible_or_404, visible

PAGE_SIZE = 50
EXPORT_LIMIT = 500


def _fmt(amount: Money) -> str:
    """An amount as the reader's language writes it."""
    return amount.format(get_language() or "en")


def _plain(number) -> str:
    """A decimal without trailing zeros and never in exponent form: 10.000 → 10."""
    return f"{number.normalize():f}"


def _unit_price(line: InvoiceLine, invoice: Invoice) -> str:
    """A unit price with as many decimals as it has, at least the currency's."""
    return format_currency(
        line.unit_price, invoice.currency, locale=get_language() or "en", decimal_quantization=False
    )


def _page(request: HttpRequest, queryset, size: int = PAGE_SIZE):
    return Paginator(queryset, size).get_page(request.GET.get("page"))


def _client_by_number(user, number: str) -> Client | None:
    """A client the user may see, by its number as typed."""
    number = (number or "").strip()
    if not number:
        return None
    return visible(Client.objects.all(), user).filter(number__iexact=number).first()


def _show_refusal(request: HttpRequest, form, refused: ServiceError) -> None:
    """A refusal about a field goes under that field; one about the record (its status, a
    closed invoice) goes to the top of the page, where it shows whichever panel is open."""
    at_fields = {f: m for f, m in refused.message_dict.items() if f in form.fields}
    for field, errors in refused.message_dict.items():
        if field not in at_fields:
            messages.error(request, " ".join(errors))
    if at_fields:
        add_service_errors(form, ServiceError(errors=at_fields))


def _no_client(form, field: str, number: str) -> None:
    form.add_error(field, _("No client has the number %(number)s.") % {"number": number})


# ----------------------------------------------------------------------------- invoices


def _bill_search(request: HttpRequest):
    """The invoices the bills search asks for, and the search form."""
    form = BillSearchForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else getattr(form, "cleaned_data", {})
    sort = data.get("sort") or "-number"
    if sort not in queries.SORTS:
        sort = "-number"
    criteria = queries.BillSearch(
        number=data.get("number") or "",
        date_from=data.get("date_from"),
        date_to=data.get("date_to"),
        status=data.get("status") or "",
        zero_balance={"yes": True, "no": False}.get(data.get("zero") or ""),
        last=data.get("last"),
        sort=sort,
    )
    found = queries.bills_search(request.user, criteria)
    if data.get("overdue"):
        found = found.filter(status__in=Invoice.OPEN, balance_minor__gt=0, due_on__lt=clock.today())
    if data.get("run"):
        found = found.filter(billing_run=data["run"])
    return found, form, sort


SORT_COLUMNS = ("number", "cycle", "overdue", "amount", "balance")


@login_required
def invoice_list(request: HttpRequest) -> HttpResponse:
    """Invoices the user may see, searched and sorted as the bills search asks."""
    found, form, sort = _bill_search(request)
    page = _page(request, found)
    params = request.GET.copy()
    params.pop("page", None)
    sort_links = {}
    for column in SORT_COLUMNS:
        params["sort"] = f"-{column}" if sort == column else column
        sort_links[column] = {
            "query": params.urlencode(),
            "arrow": "▲" if sort == column else "▼" if sort == f"-{column}" else "",
        }
    params.pop("sort", None)
    export_params = request.GET.copy()
    export_params.pop("page", None)
    return render(
        request,
        "billing/invoice_list.html",
        {
            "page": page,
            "form": form,
            "sort": sort,
            "sort_links": sort_links,
            "export_query": export_params.urlencode(),
            "overdue": request.GET.get("overdue") == "1",
            "today": clock.today(),
        },
    )


@login_required
def invoices_export(request: HttpRequest) -> HttpResponse:
    """The PDFs of the searched invoices in one zip (issued ones, at most EXPORT_LIMIT)."""
    from clientbase.billing.pdf import invoices_zip

    found, _form, _sort = _bill_search(request)
    found = found.exclude(status=Invoice.Status.DRAFT)
    count = found.count()
    back = reverse("billing:invoices") + (f"?{request.GET.urlencode()}" if request.GET else "")
    if count > EXPORT_LIMIT:
        messages.error(
            request,
            _("%(count)s invoices match: narrow the search to %(limit)s or fewer to export them.")
            % {"count": count, "limit": EXPORT_LIMIT},
        )
        return redirect(back)
    if not count:
        messages.error(request, _("No issued invoice matches: nothing to export."))
        return redirect(back)
    data = invoices_zip(list(found.select_related("client")))
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="invoices.zip"'
    return response


def _invoice(user, pk: int) -> Invoice:
    return get_visible_or_404(Invoice.objects.select_related("client"), user, pk=pk)


def _invoice_context(request: HttpRequest, invoice: Invoice, **bound) -> dict:
    """Everything the invoice page shows, with the default (or a refused, bound) form each."""
    money = invoice.money
    client = invoice.client
    lines = list(invoice.lines.select_related("service"))
    allocations = list(invoice.allocations.select_related("payment"))
    held = credit_held(history_ids(client), invoice.currency)
    today = clock.today()
    forms = {
        "dates_form": InvoiceDatesForm(
            initial={
                "issued_on": invoice.issued_on,
                "due_on": invoice.due_on,
                "notes": invoice.notes,
            }
        ),
        "line_form": LineForm(),
        "payment_form": PaymentForm(
            initial={
                "amount": invoice.balance.amount if invoice.balance_minor > 0 else "",
                "method": client.payment_method,
                "received_on": today,
            }
        ),
        "credit_form": CreditApplyForm(),
        "refund_form": RefundForm(initial={"destination": "credit"}),
        "credit_note_form": CreditNoteForm(),
        "cancel_form": ReasonForm(),
        "send_form": SendForm(initial={"to": invoice.snapshot.get("email") or client.email}),
    }
    forms.update(bound)
    return {
        "invoice": invoice,
        "client": client,
        "lines": [
            (
                line,
                money(line.net_minor),
                money(line.tax_minor),
                _unit_price(line, invoice),
                {
                    "quantity": _plain(line.quantity),
                    "discount": _plain(line.discount_percent),
                    "rate": _plain(line.tax_rate),
                },
            )
            for line in lines
        ],
        "amounts": {
            "subtotal": money(invoice.subtotal_minor),
            "tax": money(invoice.tax_minor),
            "total": money(invoice.total_minor),
            "paid": money(invoice.paid_minor),
            "credited": money(invoice.credited_minor),
            "refunded": money(invoice.refunded_minor),
            "balance": money(invoice.balance_minor),
        },
        "allocations": [(a, money(a.amount_minor)) for a in allocations],
        "credit_notes": [(n, money(n.amount_minor)) for n in invoice.credit_notes.all()],
        "refunds": [(r, money(r.amount_minor)) for r in invoice.refunds.all()],
        "credit_held": held,
        "is_open": invoice.status in Invoice.OPEN,
        "open_panel": next(iter(bound), ""),
        "snapshot": invoice.snapshot or _live_snapshot(client),
        **forms,
    }


def _live_snapshot(client: Client) -> dict:
    """A draft shows the client as it is now; issuing freezes it."""
    from clientbase.billing.pdf import client_snapshot

    return client_snapshot(client)


@login_required
def invoice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An invoice: header, lines, totals, money received and given back, and its actions."""
    invoice = _invoice(request.user, pk)
    return render(request, "billing/invoice_detail.html", _invoice_context(request, invoice))


def _refused(request, invoice: Invoice, name: str, form) -> HttpResponse:
    invoice.refresh_from_db()
    context = _invoice_context(request, invoice, **{name: form})
    return render(request, "billing/invoice_detail.html", context)


def _to_invoice(invoice: Invoice, anchor: str = "") -> HttpResponse:
    return redirect(
        reverse("billing:invoice", args=[invoice.pk]) + (f"#{anchor}" if anchor else "")
    )


def _invoice_action(request, pk: int, form_class, name: str, act) -> HttpResponse:
    """Run an invoice action from a posted form: done → back to the invoice, refused → the
    page again with the message at the field."""
    invoice = _invoice(request.user, pk)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            message = act(invoice, form.cleaned_data)
        except ServiceError as refused:
            _show_refusal(request, form, refused)
        else:
            messages.success(request, message)
            return _to_invoice(invoice)
    return _refused(request, invoice, name, form)


@require_action("billing.invoice")
def invoice_add(request: HttpRequest) -> HttpResponse:
    """A new empty draft invoice for a client (?client=<id>)."""
    client_id = request.GET.get("client", "")
    client = get_visible_or_404(
        Client.objects.all(), request.user, pk=int(client_id) if client_id.isdigit() else 0
    )
    if request.method != "POST":
        return render(request, "billing/invoice_add.html", {"client": client})
    try:
        invoice = services.invoice_create(by=request.user, client=client)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
        return redirect("clients:detail", pk=client.pk)
    messages.success(request, _("Draft invoice created."))
    return _to_invoice(invoice)


@require_action("billing.invoice")
@require_POST
def invoice_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a draft's dates and notes."""

    def act(invoice, data):
        services.invoice_update(by=request.user, invoice=invoice, **data)
        return _("Invoice saved.")

    return _invoice_action(request, pk, InvoiceDatesForm, "dates_form", act)


def _line_spec(data: dict) -> LineSpec:
    return LineSpec(
        description=data["description"],
        unit_price=data["unit_price"],
        quantity=data["quantity"],
        discount_percent=data["discount_percent"] or "0",
        taxable=data["taxable"],
        tax_rate=(data["tax_rate"] or "").strip() or None,
        period_start=data["period_start"],
        period_end=data["period_end"],
    )


@require_action("billing.invoice")
@require_POST
def invoice_line_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a line to a draft."""

    def act(invoice, data):
        services.invoice_line_add(by=request.user, invoice=invoice, line=_line_spec(data))
        return _("Line added.")

    return _invoice_action(request, pk, LineForm, "line_form", act)


def _line(request, pk: int, line_pk: int) -> tuple[Invoice, InvoiceLine]:
    invoice = _invoice(request.user, pk)
    line = get_visible_or_404(InvoiceLine.objects.filter(invoice=invoice), request.user, pk=line_pk)
    return invoice, line


@require_action("billing.invoice")
def invoice_line_edit(request: HttpRequest, pk: int, line_pk: int) -> HttpResponse:
    """Rewrite a line of a draft."""
    invoice, line = _line(request, pk, line_pk)
    initial = {
        "description": line.description,
        "quantity": _plain(line.quantity),
        "unit_price": _plain(line.unit_price),
        "discount_percent": _plain(line.discount_percent),
        "tax_rate": _plain(line.tax_rate) if line.taxable else "",
        "taxable": line.taxable,
        "period_start": line.period_start,
        "period_end": line.period_end,
    }
    form = LineForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.invoice_line_update(
                by=request.user, line=line, spec=_line_spec(form.cleaned_data)
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Line saved."))
            return _to_invoice(invoice, "lines")
    return render(
        request, "billing/line_form.html", {"invoice": invoice, "line": line, "form": form}
    )


@require_action("billing.invoice")
@require_POST
def invoice_line_delete(request: HttpRequest, pk: int, line_pk: int) -> HttpResponse:
    """Remove a line from a draft."""
    invoice, line = _line(request, pk, line_pk)
    try:
        services.invoice_line_delete(by=request.user, line=line)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Line removed."))
    return _to_invoice(invoice, "lines")


@require_action("billing.invoice")
@require_POST
def invoice_issue(request: HttpRequest, pk: int) -> HttpResponse:
    """Number and freeze a draft."""
    invoice = _invoice(request.user, pk)
    try:
        invoice = services.invoice_issue(by=request.user, invoice=invoice)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Invoice %(number)s issued.") % {"number": invoice.number})
    return _to_invoice(invoice)


@require_action("billing.invoice")
@require_POST
def invoice_send(request: HttpRequest, pk: int) -> HttpResponse:
    """Email the invoice with its PDF."""

    def act(invoice, data):
        services.invoice_send(by=request.user, invoice=invoice, to=data["to"] or None)
        return _("Invoice %(number)s sent.") % {"number": invoice.number}

    return _invoice_action(request, pk, SendForm, "send_form", act)


@require_action("billing.invoice")
@require_POST
def invoice_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a draft or an unpaid issued invoice."""

    def act(invoice, data):
        services.invoice_cancel(by=request.user, invoice=invoice, reason=data["reason"])
        return _("Invoice cancelled.")

    return _invoice_action(request, pk, ReasonForm, "cancel_form", act)


@require_action("billing.payment")
@require_POST
def invoice_pay(request: HttpRequest, pk: int) -> HttpResponse:
    """Record a payment for this invoice; beyond its balance it goes to credit."""

    def act(invoice, data):
        amount = parse_money(data["amount"], invoice.currency)
        payment = services.payment_record(
            by=request.user,
            client=invoice.client,
            amount=amount,
            method=data["method"],
            invoices=[(invoice, None)],
            received_on=data["received_on"],
            reference=data["reference"],
        )
        return _payment_message(payment)

    return _invoice_action(request, pk, PaymentForm, "payment_form", act)


def _payment_message(payment) -> str:
    text = _("Payment %(number)s of %(amount)s recorded.") % {
        "number": payment.number,
        "amount": _fmt(payment.amount),
    }
    if payment.to_credit_minor:
        text += " " + _("%(credit)s went to the credit balance.") % {
            "credit": _fmt(Money(payment.to_credit_minor, payment.currency))
        }
    return text


@require_action("billing.payment")
@require_POST
def invoice_apply_credit(request: HttpRequest, pk: int) -> HttpResponse:
    """Pay the invoice from the client's credit balance."""

    def act(invoice, data):
        raw = (data["amount"] or "").strip()
        amount = parse_money(raw, invoice.currency) if raw else None
        applied = services.credit_apply(by=request.user, invoice=invoice, amount=amount)
        return _("%(amount)s of credit applied.") % {"amount": _fmt(applied)}

    return _invoice_action(request, pk, CreditApplyForm, "credit_form", act)


@require_action("billing.refund")
@require_POST
def invoice_refund(request: HttpRequest, pk: int) -> HttpResponse:
    """Give back money paid on the invoice, to credit or out to the client."""

    def act(invoice, data):
        refund = services.refund_record(
            by=request.user,
            invoice=invoice,
            amount=parse_money(data["amount"], invoice.currency),
            destination=data["destination"],
            method=data["method"],
            reason=data["reason"],
        )
        return _("Refund %(number)s of %(amount)s recorded.") % {
            "number": refund.number,
            "amount": _fmt(Money(refund.amount_minor, refund.currency)),
        }

    return _invoice_action(request, pk, RefundForm, "refund_form", act)


@require_action("billing.refund")
@require_POST
def invoice_credit_note(request: HttpRequest, pk: int) -> HttpResponse:
    """A credit note or write-off on the invoice."""

    def act(invoice, data):
        note = services.credit_note_create(
            by=request.user,
            invoice=invoice,
            amount=parse_money(data["amount"], invoice.currency),
            reason=data["reason"],
            kind=data["kind"],
        )
        return _("%(kind)s %(number)s of %(amount)s recorded.") % {
            "kind": note.get_kind_display(),
            "number": note.number,
            "amount": _fmt(Money(note.amount_minor, note.currency)),
        }

    return _invoice_action(request, pk, CreditNoteForm, "credit_note_form", act)


@login_required
def invoice_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The issued invoice as a PDF in the client's language."""
    from clientbase.billing.pdf import invoice_filename
    from clientbase.billing.pdf import invoice_pdf as render_pdf

    invoice = _invoice(request.user, pk)
    if invoice.is_draft:
        messages.error(request, _("Issue the invoice before downloading its PDF."))
        return _to_invoice(invoice)
    response = HttpResponse(render_pdf(invoice), content_type="application/pdf")
    disposition = "inline" if request.GET.get("inline") == "1" else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{invoice_filename(invoice)}"'
    return response


@login_required
def invoice_print(request: HttpRequest, pk: int) -> HttpResponse:
    """The invoice as a page made for printing."""
    invoice = _invoice(request.user, pk)
    context = _invoice_context(request, invoice)
    return render(request, "billing/invoice_print.html", context)


# ----------------------------------------------------------------------------- orders


@login_required
def order_list(request: HttpRequest) -> HttpResponse:
    """Orders the user may see, newest first; ?status=pending for those waiting."""
    found = queries.orders_for(request.user).prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.select_related("product"))
    )
    status = request.GET.get("status", "")
    if status in Order.Status.values:
        found = found.filter(status=status)
    return render(
        request,
        "billing/order_list.html",
        {"page": _page(request, found), "status": status, "statuses": Order.Status.choices},
    )


def _option_rows(products, data, current: dict | None = None, product=None):
    """Each product with its options and the units typed (or the service's own)."""
    rows = []
    for item in products:
        options = []
        for option in item.options.all():
            value = data.get(f"option_{option.pk}", "") if data else ""
            if not data and current is not None and item == product:
                value = current.get(option.code, "")
            options.append((option, value))
        rows.append((item, options))
    return rows


@require_action("billing.sell")
def order_add(request: HttpRequest) -> HttpResponse:
    """A new order for one product; the client by number (prefilled from the profile)."""
    initial = {"send_email": True, "quantity": 1}
    client_id = request.GET.get("client", "")
    if client_id.isdigit():
        client = get_visible_or_404(Client.objects.all(), request.user, pk=int(client_id))
        initial["client"] = client.number
    form = OrderForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        client = _client_by_number(request.user, data["client"])
        if client is None:
            _no_client(form, "client", data["client"])
        else:
            try:
                override = None
                if data["price_override"].strip():
                    override = parse_money(
                        data["price_override"], client.currency, "price_override"
                    )
                item = ItemSpec(
                    data["product"],
                    data["cycle"],
                    data["quantity"],
                    form.options_for(data["product"], request.POST),
                    override,
                )
                order = services.order_create(
                    by=request.user,
                    client=client,
                    items=[item],
                    payment_method=data["payment_method"] or None,
                    promo_code=data["promo_code"],
                    send_email=data["send_email"],
                    note=data["note"],
                )
            except ServiceError as refused:
                add_service_errors(form, refused)
            else:
                messages.success(request, _("Order %(number)s placed.") % {"number": order.number})
                return redirect("billing:order", pk=order.pk)
    products = list(_products().prefetch_related("options"))
    return render(
        request,
        "billing/order_form.html",
        {"form": form, "option_rows": _option_rows(products, request.POST)},
    )


def _order(user, pk: int) -> Order:
    return get_visible_or_404(
        Order.objects.select_related("client", "promo", "invoice"), user, pk=pk
    )


@login_required
def order_detail(request: HttpRequest, pk: int, cancel_form=None) -> HttpResponse:
    """An order: its items, what accepting it made, and Accept / Cancel while pending."""
    order = _order(request.user, pk)
    items = []
    for item in order.items.select_related("product"):
        price = (
            Money(item.price_override_minor, order.currency)
            if item.price_override_minor is not None
            else None
        )
        items.append((item, price))
    return render(
        request,
        "billing/order_detail.html",
        {
            "order": order,
            "items": items,
            "services": order.services.select_related("product"),
            "order_invoices": order.invoices.order_by("id"),
            "cancel_form": cancel_form or ReasonForm(),
        },
    )


@require_action("billing.sell")
@require_POST
def order_accept(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept a pending order: services and a draft invoice for their first period."""
    order = _order(request.user, pk)
    try:
        order = services.order_accept(by=request.user, order=order)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
        return redirect("billing:order", pk=order.pk)
    messages.success(
        request,
        _("Order %(number)s accepted: check the draft invoice and issue it.")
        % {"number": order.number},
    )
    return _to_invoice(order.invoice)


@require_action("billing.sell")
@require_POST
def order_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a pending order (or mark it fraud) with a reason."""
    order = _order(request.user, pk)
    form = ReasonForm(request.POST)
    if form.is_valid():
        try:
            services.order_cancel(
                by=request.user,
                order=order,
                reason=form.cleaned_data["reason"],
                fraud=request.POST.get("fraud") == "1",
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Order %(number)s cancelled.") % {"number": order.number})
            return redirect("billing:order", pk=order.pk)
    return order_detail(request, pk, cancel_form=form)


# ----------------------------------------------------------------------------- services


@login_required
def service_list(request: HttpRequest) -> HttpResponse:
    """Services the user may see; ?due=1 for those renewing within 14 days."""
    due = request.GET.get("due") == "1"
    found = queries.services_due(request.user) if due else queries.services_for(request.user)
    status = request.GET.get("status", "")
    if status in dict(SERVICE_STATUS_CHOICES) and status:
        found = found.filter(status=status)
    if due:
        found = found.order_by("next_due_on", "id")
    return render(
        request,
        "billing/service_list.html",
        {
            "page": _page(request, found),
            "due": due,
            "status": status,
            "statuses": SERVICE_STATUS_CHOICES[1:],
        },
    )


def _service(user, pk: int):
    return get_visible_or_404(
        queries.services_for(user).select_related("order", "promo"), user, pk=pk
    )


@login_required
def service_detail(request: HttpRequest, pk: int, **bound) -> HttpResponse:
    """A service: price, period and status, its invoices, and what a clerk can do with it."""
    service = _service(request.user, pk)
    invoices = (
        queries.invoices_for(request.user).filter(lines__service=service).distinct().order_by("-id")
    )
    forms = {
        "action_form": ServiceActionForm(),
        "end_form": CancelAtEndForm(initial={"cancel": not service.cancel_at_period_end}),
        "dates_form": ServiceDatesForm(
            initial={
                "next_due_on": service.next_due_on,
                "suspend_exempt_until": service.suspend_exempt_until,
            }
        ),
        "transfer_form": TransferForm(),
    }
    forms.update(bound)
    return render(
        request,
        "billing/service_detail.html",
        {
            "service": service,
            "invoices": invoices[:50],
            "options": sorted(service.options.items()),
            "next_price": next_renewal_price(service),
            "open_panel": next(iter(bound), ""),
            **forms,
        },
    )


def _service_action(request, pk: int, form_class, name: str, act) -> HttpResponse:
    service = _service(request.user, pk)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            message = act(service, form.cleaned_data)
        except ServiceError as refused:
            _show_refusal(request, form, refused)
        else:
            messages.success(request, message)
            return redirect("billing:service", pk=service.pk)
    return service_detail(request, pk, **{name: form})


@require_action("billing.sell")
@require_POST
def service_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Suspend, unsuspend, terminate or cancel a service, with a reason."""

    def act(service, data):
        day = data.pop("on")
        if day and day > clock.today():
            services.service_action_schedule(by=request.user, service=service, due_on=day, **data)
            return _("Scheduled for %(day)s.") % {"day": day.isoformat()}
        service = services.service_action(by=request.user, service=service, **data)
        return _("The service is now %(status)s.") % {"status": service.get_status_display()}

    return _service_action(request, pk, ServiceActionForm, "action_form", act)


@require_action("billing.sell")
@require_POST
def service_cancel_at_end(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask for (or withdraw) cancellation at the end of the paid period."""

    def act(service, data):
        services.service_cancel_at_period_end(
            by=request.user, service=service, reason=data["reason"], cancel=data["cancel"]
        )
        if data["cancel"]:
            return _("The service will be cancelled at the end of the period.")
        return _("The cancellation at the end of the period is withdrawn.")

    return _service_action(request, pk, CancelAtEndForm, "end_form", act)


@require_action("billing.sell")
@require_POST
def service_dates(request: HttpRequest, pk: int) -> HttpResponse:
    """Change the next due date and the auto-suspension exemption."""

    def act(service, data):
        services.service_update(by=request.user, service=service, **data)
        return _("Dates saved.")

    return _service_action(request, pk, ServiceDatesForm, "dates_form", act)


@require_action("billing.sell")
@require_POST
def service_transfer(request: HttpRequest, pk: int) -> HttpResponse:
    """Move a service to another client, named by its number."""
    service = _service(request.user, pk)
    form = TransferForm(request.POST)
    if form.is_valid():
        target = _client_by_number(request.user, form.cleaned_data["to_client"])
        if target is None:
            _no_client(form, "to_client", form.cleaned_data["to_client"])
        else:
            try:
                services.service_transfer(
                    by=request.user,
                    service=service,
                    to_client=target,
                    reason=form.cleaned_data["reason"],
                )
            except ServiceError as refused:
                add_service_errors(form, refused)
            else:
                messages.success(
                    request,
                    _("Service transferred to %(client)s.") % {"client": target.name},
                )
                return redirect("billing:service", pk=service.pk)
    return service_detail(request, pk, transfer_form=form)


def _change_input(request, service):
    """The change form, bound to the POST, and the options typed for the chosen product."""
    form = ProductChoiceForm(
        request.POST or None,
        initial={
            "product": service.product_id,
            "cycle": service.cycle,
            "quantity": service.quantity,
        },
    )
    products = list(_products().prefetch_related("options"))
    if service.product not in products:
        products.insert(0, service.product)
        form.fields["product"].queryset = form.fields["product"].queryset | type(
            service.product
        ).objects.filter(pk=service.product_id)
    return form, products


def _change_render(request, service, form, products):
    return render(
        request,
        "billing/service_change.html",
        {
            "service": service,
            "form": form,
            "option_rows": _option_rows(
                products, request.POST, current=service.options, product=service.product
            ),
        },
    )


@require_action("billing.sell")
def service_change(request: HttpRequest, pk: int) -> HttpResponse:
    """Upgrade or downgrade: choose product, cycle, quantity, options, then see the preview."""
    service = _service(request.user, pk)
    form, products = _change_input(request, service)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        options = form.options_for(data["product"], request.POST)
        try:
            preview = services.service_change_preview(
                service=service,
                product=data["product"],
                cycle=data["cycle"],
                quantity=data["quantity"],
                options=options,
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            hidden = [
                (f"option_{o.pk}", request.POST.get(f"option_{o.pk}", ""))
                for o in data["product"].options.all()
            ]
            return render(
                request,
                "billing/service_change_preview.html",
                {
                    "service": service,
                    "preview": preview,
                    "data": data,
                    "hidden": hidden,
                    "credit": -preview.total if preview.total.minor < 0 else None,
                    "new_options": [(c.option.name, c.units) for c in preview.quote.options],
                },
            )
    return _change_render(request, service, form, products)


@require_action("billing.sell")
@require_POST
def service_change_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply the previewed change: a prorated invoice for an upgrade, credit for a downgrade."""
    service = _service(request.user, pk)
    form, products = _change_input(request, service)
    if form.is_valid():
        data = form.cleaned_data
        try:
            service, invoice, preview = services.service_change(
                by=request.user,
                service=service,
                product=data["product"],
                cycle=data["cycle"],
                quantity=data["quantity"],
                options=form.options_for(data["product"], request.POST),
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            if invoice is not None:
                messages.success(
                    request,
                    _("Service changed; invoice %(number)s of %(amount)s issued.")
                    % {"number": invoice.number, "amount": _fmt(invoice.total)},
                )
                return _to_invoice(invoice)
            if preview.charge.minor < 0:
                messages.success(
                    request,
                    _("Service changed; %(amount)s went to the credit balance.")
                    % {"amount": _fmt(-preview.charge)},
                )
            else:
                messages.success(request, _("Service changed."))
            return redirect("billing:service", pk=service.pk)
    return _change_render(request, service, form, products)


# ----------------------------------------------------------------------------- payments


@login_required
def payment_list(request: HttpRequest) -> HttpResponse:
    """Payments the user may see, newest first."""
    found = queries.payments_for(request.user)
    rows = _page(request, found)
    return render(
        request,
        "billing/payment_list.html",
        {
            "page": rows,
            "rows": [(p, Money(p.to_credit_minor, p.currency)) for p in rows],
        },
    )


@require_action("billing.payment")
def payment_add(request: HttpRequest) -> HttpResponse:
    """Money from a client spread over its open invoices (blank amount: the rest); what is
    left goes to the credit balance."""
    number = (request.POST.get("client") or request.GET.get("client") or "").strip()
    client = _client_by_number(request.user, number)
    initial = {"client": number, "received_on": clock.today()}
    if client is not None:
        initial["method"] = client.payment_method
    form = ClientPaymentForm(request.POST or None, initial=initial)
    open_invoices = []
    if client is not None:
        open_invoices = list(
            queries.invoices_for(request.user)
            .filter(client_id__in=history_ids(client), status__in=Invoice.OPEN)
            .order_by("due_on", "id")
        )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if client is None:
            _no_client(form, "client", data["client"])
        else:
            try:
                amount = parse_money(data["amount"], client.currency)
                allocations = []
                for invoice in open_invoices:
                    if request.POST.get(f"inv_{invoice.pk}"):
                        raw = request.POST.get(f"amt_{invoice.pk}", "").strip()
                        share = parse_money(raw, client.currency, "invoices") if raw else None
                        allocations.append((invoice, share))
                payment = services.payment_record(
                    by=request.user,
                    client=client,
                    amount=amount,
                    method=data["method"],
                    invoices=allocations,
                    received_on=data["received_on"],
                    reference=data["reference"],
                )
            except ServiceError as refused:
                add_service_errors(form, refused)
            else:
                messages.success(request, _payment_message(payment))
                return redirect(reverse("clients:detail", args=[client.pk]) + "?tab=transactions")
    rows = [
        (
            invoice,
            request.POST.get(f"inv_{invoice.pk}") if request.method == "POST" else "",
            request.POST.get(f"amt_{invoice.pk}", ""),
        )
        for invoice in open_invoices
    ]
    return render(
        request,
        "billing/payment_form.html",
        {"form": form, "client": client, "rows": rows, "number": number},
    )


# ----------------------------------------------------------------------------- client profile


def _to_transactions(client: Client) -> HttpResponse:
    return redirect(reverse("clients:detail", args=[client.pk]) + "?tab=transactions")


def _say_form_errors(request: HttpRequest, form) -> None:
    """Show a profile form's errors as a message, the form living in a folded panel."""
    messages.error(request, " ".join(m for ms in form.errors.values() for m in ms))


@require_action("billing.refund")
@require_POST
def credit_adjust(request: HttpRequest, pk: int) -> HttpResponse:
    """Adjust a client's credit balance up or down, with a reason."""
    client = get_visible_or_404(Client.objects.all(), request.user, pk=pk)
    form = CreditAdjustForm(request.POST)
    if form.is_valid():
        try:
            held = services.credit_adjust(
                by=request.user,
                client=client,
                amount=parse_money(form.cleaned_data["amount"], client.currency),
                reason=form.cleaned_data["reason"],
            )
        except ServiceError as refused:
            messages.error(request, " ".join(refused.messages))
        else:
            messages.success(
                request, _("Credit balance is now %(amount)s.") % {"amount": _fmt(held)}
            )
    else:
        _say_form_errors(request, form)
    return _to_transactions(client)


@require_action("billing.invoice")
@require_POST
def credit_top_up(request: HttpRequest, pk: int) -> HttpResponse:
    """Issue an invoice for credit paid in advance and open it."""
    client = get_visible_or_404(Client.objects.all(), request.user, pk=pk)
    form = CreditTopUpForm(request.POST)
    if not form.is_valid():
        _say_form_errors(request, form)
        return _to_transactions(client)
    try:
        invoice = services.credit_top_up_invoice(
            by=request.user,
            client=client,
            amount=parse_money(form.cleaned_data["amount"], client.currency),
            due_days=form.cleaned_data["due_days"],
        )
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
        return _to_transactions(client)
    messages.success(request, _("Invoice %(number)s issued.") % {"number": invoice.number})
    return redirect("billing:invoice", invoice.pk)


@require_action("billing.refund")
@require_POST
def credit_limit(request: HttpRequest, pk: int) -> HttpResponse:
    """Set a client's credit limit in a currency (empty limit: unlimited)."""
    from clientbase.billing.credit import credit_limit_set
    from clientbase.billing.forms import _parts

    client = get_visible_or_404(Client.objects.all(), request.user, pk=pk)
    form = CreditLimitForm(request.POST)
    if not form.is_valid():
        _say_form_errors(request, form)
        return _to_transactions(client)
    data = form.cleaned_data
    currency = data["currency"].strip().upper()
    try:
        limit = parse_money(data["limit"], currency, "limit") if data["limit"].strip() else None
        floor = parse_money(data["floor"], currency, "floor") if data["floor"].strip() else None
        fixed = [
            parse_money(p, currency, "fixed_thresholds") for p in _parts(data["fixed_thresholds"])
        ]
        credit_limit_set(
            by=request.user,
            client=client,
            currency=currency,
            limit=limit,
            floor=floor,
            fixed_thresholds=fixed,
            percent_thresholds=data["percent_thresholds"],
            enforce=data["enforce"],
        )
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Credit limit saved."))
    return _to_transactions(client)


@require_action("billing.refund")
@require_POST
def credit_payout(request: HttpRequest, pk: int) -> HttpResponse:
    """Pay (part of) a client's credit balance out to the client."""
    client = get_visible_or_404(Client.objects.all(), request.user, pk=pk)
    form = CreditPayoutForm(request.POST)
    if form.is_valid():
        try:
            refund = services.refund_record(
                by=request.user,
                client=client,
                amount=parse_money(form.cleaned_data["amount"], client.currency),
                destination="out",
                method=form.cleaned_data["method"],
                reason=form.cleaned_data["reason"],
            )
        except ServiceError as refused:
            messages.error(request, " ".join(refused.messages))
        else:
            messages.success(
                request,
                _("Refund %(number)s of %(amount)s recorded.")
                % {
                    "number": refund.number,
                    "amount": _fmt(Money(refund.amount_minor, refund.currency)),
                },
            )
    else:
        _say_form_errors(request, form)
    return _to_transactions(client)


PROFILE_TABS = ("services", "invoices", "transactions")


def profile_tab(user, client: Client, tab: str) -> dict:
    """What the client profile's billing tabs show: services, invoices, or the ledger."""
    ids = history_ids(client)
    if tab == "services":
        return {"billing_services": queries.services_for(user).filter(client_id__in=ids)}
    if tab == "invoices":
        return {
            "billing_invoices": queries.invoices_for(user)
            .filter(client_id__in=ids)
            .order_by("-issued_on", "-id")[:200]
        }
    running: dict[str, int] = {}
    rows = []
    for entry in queries.client_ledger(client).select_related("invoice"):
        running[entry.currency] = running.get(entry.currency, 0) + entry.amount_minor
        rows.append((entry, Money(running[entry.currency], entry.currency)))
    rows.reverse()
    return {
        "ledger_rows": rows,
        "ledger_kinds": dict(LedgerEntry.Kind.choices),
        "credit_balance": credit_held(ids, client.currency),
        "adjust_form": CreditAdjustForm(),
        "top_up_form": CreditTopUpForm(),
        "payout_form": CreditPayoutForm(initial={"method": client.payment_method}),
        "limit_form": CreditLimitForm(initial={"currency": client.currency, "enforce": True}),
        "credit_limits": limits_of(client),
    }
