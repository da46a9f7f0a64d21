"""Pages of quotes and contracts: lists, the quote card with its lines editor and actions,
the contract card, contract templates, and the PDFs."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clientbase.clients.queries import client_get, clients_for
from clientbase.core import clock
from clientbase.core.errors import ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.money import Money
from clientbase.core.permissions import require_action
from clientbase.core.visibility import visible
from clientbase.sales import quote_pdf
from clientbase.sales import quote_queries as queries
from clientbase.sales import quote_services as services
from clientbase.sales.models import Contract, ContractTemplate, Deal, Lead, Quote, QuoteLine
from clientbase.sales.quote_forms import (
    ContractForm,
    ContractTemplateForm,
    NoteForm,
    QuoteForm,
    QuoteLineForm,
    SendForm,
    StageForm,
)

WORK = "sales.work"
SETTINGS = "sales.settings"


def _number(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 19 else None


def _priced(records, **fields: str):
    """Give each record Money attributes for its *_minor fields, for the money filter."""
    for record in records:
        for name, source in fields.items():
            setattr(record, name, Money(getattr(record, source), record.currency))
    return records


def _mark_expired(quotes):
    """Flag open quotes past their validity, for the stage badge."""
    today = clock.today()
    for quote in quotes:
        quote.expired = (
            quote.stage in (*services.EDITABLE, Quote.Stage.SENT) and quote.valid_until < today
        )
    return quotes


def _refusal(request: HttpRequest, refused: ServiceError) -> None:
    messages.error(request, " ".join(str(m) for m in refused.messages))


# --- quotes ---------------------------------------------------------------------------------


@login_required
def quote_list(request: HttpRequest) -> HttpResponse:
    """Quotes in sight, filtered by stage, approval, owner and client."""
    get = request.GET
    filters = queries.QuoteFilters(
        stage=get.get("stage", "")[:12],
        approval=get.get("approval", "")[:10],
        owner=get.get("owner", "")[:19],
        client=_number(get.get("client", "")),
        q=get.get("q", "")[:100],
    )
    quotes = _priced(
        list(queries.quote_list(request.user, filters)[: queries.PAGE_SIZE]), total="total_minor"
    )
    _mark_expired(quotes)
    return render(
        request,
        "sales/quote_list.html",
        {
            "quotes": quotes,
            "filters": filters,
            "stages": Quote.Stage.choices,
            "approvals": Quote.Approval.choices,
        },
    )


def _holder(request: HttpRequest):
    """The client, lead or deal a new quote is for, from ?client=, ?lead= or ?deal=."""
    source = request.POST if request.method == "POST" else request.GET
    found = {}
    for name, model in (("lead", Lead), ("deal", Deal)):
        pk = _number(source.get(name, ""))
        if pk is not None:
            record = visible(model.objects.all(), request.user).filter(pk=pk).first()
            if record is None:
                raise Http404
            found[name] = record
    pk = _number(source.get("client", ""))
    if pk is not None:
        found["client"] = client_get(request.user, pk)
    return found


@require_action(WORK)
def quote_new(request: HttpRequest) -> HttpResponse:
    """A new draft quote for a client, lead or deal."""
    holder = _holder(request)
    form = QuoteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not holder:
            form.add_error(None, _("Choose the client the quote is for."))
        else:
            data = form.cleaned_data
            try:
                quote = services.quote_create(
                    by=request.user,
                    issued_on=data["issued_on"],
                    valid_until=data["valid_until"],
                    title=data["title"],
                    notes=data["notes"],
                    **holder,
                )
            except ServiceError as refused:
                add_service_errors(form, refused)
            else:
                messages.success(
                    request, _("Quote %(number)s made: add its lines.") % {"number": quote.number}
                )
                return redirect("sales:quote", quote.pk)
    clients = [] if holder else clients_for(request.user).order_by("name")[:200]
    return render(
        request,
        "sales/quote_new.html",
        {"form": form, "holder": holder, "clients": clients},
        status=400 if form.is_bound else 200,
    )


def _card_context(request: HttpRequest, quote: Quote, **forms) -> dict:
    _priced([quote], subtotal="subtotal_minor", tax="tax_minor", total="total_minor")
    _mark_expired([quote])
    lines = list(quote.lines.all())
    for line in lines:
        line.amount = Money(line.net_minor, quote.currency)
    return {
        "quote": quote,
        "lines": lines,
        "editable": quote.stage in services.EDITABLE,
        "may_work": request.user.has_perm(WORK),
        "may_approve": request.user.has_perm("sales.approve"),
        "needs_approval": services.needs_approval(quote),
        "threshold": format(services.approval_threshold().normalize(), "f"),
        "next_stages": [
            (s, Quote.Stage(s).label) for s in services.TRANSITIONS.get(quote.stage, ())
        ],
        "convertible": quote.stage in services.CONVERTIBLE,
        "recipient": services.quote_recipient(quote),
        "line_form": forms.get("line_form") or QuoteLineForm(),
        "editing": forms.get("editing"),
        "heading_form": forms.get("heading_form")
        or QuoteForm(
            initial={
                "title": quote.title,
                "issued_on": quote.issued_on,
                "valid_until": quote.valid_until,
                "notes": quote.notes,
            }
        ),
        "send_form": SendForm(),
        "stage_form": StageForm(),
        "note_form": NoteForm(),
    }


@login_required
def quote_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A quote: heading, lines, totals, stage and approval, and its actions."""
    quote = queries.quote_get(request.user, pk)
    return render(request, "sales/quote_detail.html", _card_context(request, quote))


def _workable(request: HttpRequest, pk: int) -> Quote:
    quote = queries.quote_get(request.user, pk)
    if not request.user.has_perm(WORK):
        raise PermissionDenied
    return quote


@require_POST
@login_required
def quote_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change the title, dates and notes."""
    quote = _workable(request, pk)
    form = QuoteForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.quote_update(
                by=request.user,
                quote=quote,
                title=data["title"],
                issued_on=data["issued_on"],
                valid_until=data["valid_until"],
                notes=data["notes"],
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Quote saved."))
            return redirect("sales:quote", quote.pk)
    return render(
        request,
        "sales/quote_detail.html",
        _card_context(request, quote, heading_form=form),
        status=400,
    )


def _lines_response(
    request: HttpRequest, quote: Quote, form=None, status=200, editing=None
) -> HttpResponse:
    quote = queries.quote_get(request.user, quote.pk)
    if not request.headers.get("HX-Request"):
        if status == 200 and editing is None:
            return redirect("sales:quote", quote.pk)
        return render(
            request,
            "sales/quote_detail.html",
            _card_context(request, quote, line_form=form, editing=editing),
            status=status,
        )
    # htmx swaps the lines and totals in place; a refused line keeps its form with errors.
    return render(
        request,
        "sales/quote_lines.html",
        _card_context(request, quote, line_form=form, editing=editing),
    )


def _line_spec(quote: Quote, data: dict) -> services.QuoteLineSpec:
    product = data.get("product")
    if product is not None:
        spec = services.catalogue_line(product, quote.currency, data["quantity"])
        spec.description = data.get("description") or spec.description
        if data.get("unit_price") is not None:
            spec.unit_price = data["unit_price"]
    else:
        spec = services.QuoteLineSpec(
            description=data["description"],
            unit_price=data["unit_price"],
            quantity=data["quantity"],
        )
    spec.discount_percent = data["discount_percent"] or Decimal(0)
    spec.taxable = data["taxable"]
    return spec


@require_POST
@login_required
def quote_line_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a line from the catalogue or a free one."""
    quote = _workable(request, pk)
    form = QuoteLineForm(request.POST)
    if form.is_valid():
        try:
            services.quote_line_add(
                by=request.user, quote=quote, line=_line_spec(quote, form.cleaned_data)
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            return _lines_response(request, quote)
    return _lines_response(request, quote, form, status=400)


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


@login_required
def quote_line_edit(request: HttpRequest, pk: int, line_pk: int) -> HttpResponse:
    """Rewrite a line in the lines editor: GET fills the form with it, POST saves it."""
    quote = _workable(request, pk)
    line = get_object_or_404(QuoteLine, quote=quote, pk=line_pk)
    if request.method != "POST":
        form = QuoteLineForm(
            initial={
                "product": line.product_id,
                "description": line.description,
                "quantity": _plain(line.quantity),
                "unit_price": _plain(line.unit_price),
                "discount_percent": _plain(line.discount_percent),
                "taxable": line.taxable,
            }
        )
        return _lines_response(request, quote, form, editing=line)
    form = QuoteLineForm(request.POST)
    if form.is_valid():
        try:
            services.quote_line_update(
                by=request.user, line=line, spec=_line_spec(quote, form.cleaned_data)
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            return _lines_response(request, quote)
    return _lines_response(request, quote, form, status=400, editing=line)


@require_POST
@login_required
def quote_line_delete(request: HttpRequest, pk: int, line_pk: int) -> HttpResponse:
    """Remove a line."""
    quote = _workable(request, pk)
    line = get_object_or_404(QuoteLine, quote=quote, pk=line_pk)
    try:
        services.quote_line_delete(by=request.user, line=line)
    except ServiceError as refused:
        _refusal(request, refused)
    return _lines_response(request, quote)


@login_required
def quote_product(request: HttpRequest, pk: int) -> HttpResponse:
    """The line's description and price fields filled from the chosen product (htmx)."""
    quote = queries.quote_get(request.user, pk)
    form = QuoteLineForm()
    product_id = _number(request.GET.get("product", ""))
    error = ""
    if product_id:
        product = form.fields["product"].queryset.filter(pk=product_id).first()
        if product is None:
            raise Http404
        try:
            spec = services.catalogue_line(product, quote.currency)
        except ServiceError as refused:
            error = " ".join(refused.messages)
        else:
            form = QuoteLineForm(
                initial={
                    "product": product,
                    "description": spec.description,
                    "unit_price": format(spec.unit_price.normalize(), "f"),
                    "taxable": spec.taxable,
                }
            )
    return render(
        request,
        "sales/quote_line_fields.html",
        {"quote": quote, "line_form": form, "product_error": error},
    )


@require_POST
@login_required
def quote_stage(request: HttpRequest, pk: int) -> HttpResponse:
    """Move the quote to another stage."""
    quote = _workable(request, pk)
    form = StageForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a stage."))
        return redirect("sales:quote", quote.pk)
    try:
        services.quote_set_stage(
            by=request.user,
            quote=quote,
            stage=form.cleaned_data["stage"],
            reason=form.cleaned_data["reason"],
        )
    except ServiceError as refused:
        _refusal(request, refused)
    else:
        messages.success(request, _("Quote stage changed."))
    return redirect("sales:quote", quote.pk)


@require_POST
@login_required
def quote_approval(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Ask for approval, approve or reject."""
    quote = _workable(request, pk)
    if action not in ("request", "approve", "reject"):
        raise Http404
    form = NoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        if action == "request":
            services.quote_request_approval(by=request.user, quote=quote, note=note)
            done = _("Approval requested.")
        else:
            if not request.user.has_perm("sales.approve"):
                raise PermissionDenied
            approve = action == "approve"
            services.quote_decide(by=request.user, quote=quote, approve=approve, note=note)
            done = _("Quote approved.") if approve else _("Quote rejected.")
    except ServiceError as refused:
        _refusal(request, refused)
    else:
        messages.success(request, done)
    return redirect("sales:quote", quote.pk)


@require_POST
@login_required
def quote_send(request: HttpRequest, pk: int) -> HttpResponse:
    """Email the quote with its PDF."""
    quote = _workable(request, pk)
    form = SendForm(request.POST)
    to = form.cleaned_data["to"] if form.is_valid() else ""
    try:
        services.quote_send(by=request.user, quote=quote, to=to)
    except ServiceError as refused:
        _refusal(request, refused)
    else:
        messages.success(request, _("Quote %(number)s sent.") % {"number": quote.number})
    return redirect("sales:quote", quote.pk)


@require_POST
@login_required
def quote_convert(request: HttpRequest, pk: int, to: str) -> HttpResponse:
    """Turn the quote into a draft invoice or a contract."""
    quote = _workable(request, pk)
    try:
        quote = services.quote_convert(by=request.user, quote=quote, to=to)
    except ServiceError as refused:
        _refusal(request, refused)
        return redirect("sales:quote", quote.pk)
    if to == "invoice":
        messages.success(request, _("Draft invoice made from the quote."))
        return redirect("billing:invoice", quote.invoice_id)
    messages.success(request, _("Contract %(number)s made.") % {"number": quote.contract.number})
    return redirect("sales:contract", quote.contract_id)


def _pdf(content: bytes, name: str, request: HttpRequest) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    disposition = "attachment" if request.GET.get("download") else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{name}.pdf"'
    return response


@login_required
def quote_pdf_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The quote as PDF."""
    quote = queries.quote_get(request.user, pk)
    return _pdf(quote_pdf.quote_pdf(quote), quote.number, request)


# --- contracts ------------------------------------------------------------------------------


@login_required
def contract_list(request: HttpRequest) -> HttpResponse:
    """Contracts in sight; `?renew=1` keeps those to renew this month."""
    get = request.GET
    filters = queries.ContractFilters(
        status=get.get("status", "")[:10],
        client=_number(get.get("client", "")),
        renew=get.get("renew") == "1",
        q=get.get("q", "")[:100],
    )
    contracts = _priced(
        list(queries.contract_list(request.user, filters)[: queries.PAGE_SIZE]), value="value_minor"
    )
    return render(
        request,
        "sales/contract_list.html",
        {"contracts": contracts, "filters": filters, "statuses": Contract.Status.choices},
    )


def _contract_values(data: dict, currency: str) -> dict:
    return {
        "title": data["title"],
        "starts_on": data["starts_on"],
        "ends_on": data["ends_on"],
        "value": Money.from_decimal(data["value"] or Decimal(0), currency),
        "template": data["template"],
        "terms": data["terms"],
    }


@require_action(WORK)
def contract_new(request: HttpRequest) -> HttpResponse:
    """A new draft contract with a client (?client=)."""
    holder = _holder(request)
    client = holder.get("client") or (holder["deal"].client if holder.get("deal") else None)
    form = ContractForm(
        request.POST or None,
        initial={"template": ContractTemplate.objects.filter(is_default=True).first()},
    )
    if request.method == "POST" and form.is_valid():
        if client is None:
            form.add_error(None, _("Choose the client the contract is with."))
        else:
            try:
                contract = services.contract_create(
                    by=request.user,
                    client=client,
                    deal=holder.get("deal"),
                    **_contract_values(form.cleaned_data, client.currency),
                )
            except (ServiceError, ValueError) as refused:
                if isinstance(refused, ServiceError):
                    add_service_errors(form, refused)
                else:
                    form.add_error("value", _("Enter an amount such as 800.00."))
            else:
                messages.success(
                    request, _("Contract %(number)s drawn up.") % {"number": contract.number}
                )
                return redirect("sales:contract", contract.pk)
    clients = [] if client else clients_for(request.user).order_by("name")[:200]
    return render(
        request,
        "sales/contract_new.html",
        {"form": form, "client": client, "clients": clients},
        status=400 if form.is_bound else 200,
    )


def _contract_context(request: HttpRequest, contract: Contract, form=None) -> dict:
    _priced([contract], value="value_minor")
    lines = list(contract.lines.all())
    for line in lines:
        line.amount = Money(line.net_minor, contract.currency)
    return {
        "contract": contract,
        "lines": lines,
        "from_quote": Quote.objects.filter(contract=contract).first(),
        "renewal": Contract.objects.filter(renewal_of=contract).first(),
        "may_work": request.user.has_perm(WORK),
        "next_statuses": services.CONTRACT_TRANSITIONS.get(contract.status, ()),
        "form": form
        or ContractForm(
            initial={
                "title": contract.title,
                "starts_on": contract.starts_on,
                "ends_on": contract.ends_on,
                "value": Money(contract.value_minor, contract.currency).amount,
                "template": contract.template,
                "terms": contract.terms,
            }
        ),
    }


@login_required
def contract_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A contract: its terms, lines, the quote it came from, renewal and status actions."""
    contract = queries.contract_get(request.user, pk)
    return render(request, "sales/contract_detail.html", _contract_context(request, contract))


def _workable_contract(request: HttpRequest, pk: int) -> Contract:
    contract = queries.contract_get(request.user, pk)
    if not request.user.has_perm(WORK):
        raise PermissionDenied
    return contract


@require_POST
@login_required
def contract_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a draft or active contract."""
    contract = _workable_contract(request, pk)
    form = ContractForm(request.POST)
    if form.is_valid():
        try:
            services.contract_update(
                by=request.user,
                contract=contract,
                **_contract_values(form.cleaned_data, contract.currency),
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Contract saved."))
            return redirect("sales:contract", contract.pk)
    return render(
        request,
        "sales/contract_detail.html",
        _contract_context(request, contract, form),
        status=400,
    )


@require_POST
@login_required
def contract_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Activate (signed), terminate or renew a contract."""
    contract = _workable_contract(request, pk)
    actions = {
        "activate": (services.contract_activate, _("Contract signed and in force.")),
        "terminate": (services.contract_terminate, _("Contract terminated.")),
        "renew": (services.contract_renew, _("Contract renewed.")),
    }
    if action not in actions:
        raise Http404
    act, done = actions[action]
    try:
        result = act(by=request.user, contract=contract)
    except ServiceError as refused:
        _refusal(request, refused)
        return redirect("sales:contract", contract.pk)
    messages.success(request, done)
    return redirect("sales:contract", result.pk)


@login_required
def contract_pdf_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The contract as PDF from its template."""
    contract = queries.contract_get(request.user, pk)
    try:
        content = quote_pdf.contract_pdf(contract, request.user)
    except ServiceError as refused:
        _refusal(request, refused)
        return redirect("sales:contract", contract.pk)
    return _pdf(content, contract.number, request)


# --- contract templates ---------------------------------------------------------------------


@require_action(SETTINGS)
def contract_template_list(request: HttpRequest) -> HttpResponse:
    """The contract templates an administrator keeps."""
    return render(
        request,
        "sales/contract_template_list.html",
        {"templates": ContractTemplate.objects.all()},
    )


@require_action(SETTINGS)
def contract_template_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Write or change a template; the preview fills it with example values."""
    template = get_object_or_404(ContractTemplate, pk=pk) if pk else None
    initial = (
        {"name": template.name, "body": template.body, "is_default": template.is_default}
        if template
        else {}
    )
    form = ContractTemplateForm(request.POST or None, initial=initial)
    preview = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if "preview" in request.POST:
                preview = quote_pdf.template_preview(data["body"])
            else:
                services.contract_template_save(by=request.user, template=template, **data)
                messages.success(request, _("Template saved."))
                return redirect("sales:contract_templates")
        except ServiceError as refused:
            add_service_errors(form, refused)
    elif template is not None:
        try:
            preview = quote_pdf.template_preview(template.body)
        except ServiceError:
            preview = ""
    from clientbase.marketing.templating import iter_groups

    return render(
        request,
        "sales/contract_template_form.html",
        {"form": form, "template": template, "preview": preview, "groups": iter_groups()},
        status=400 if form.errors else 200,
    )


urlpatterns = [
    path("quotes/", quote_list, name="quotes"),
    path("quotes/new/", quote_new, name="quote_new"),
    path("quotes/<int:pk>/", quote_detail, name="quote"),
    path("quotes/<int:pk>/edit/", quote_edit, name="quote_edit"),
    path("quotes/<int:pk>/lines/", quote_line_add, name="quote_line_add"),
    path("quotes/<int:pk>/lines/<int:line_pk>/", quote_line_edit, name="quote_line_edit"),
    path(
        "quotes/<int:pk>/lines/<int:line_pk>/delete/",
        quote_line_delete,
        name="quote_line_delete",
    ),
    path("quotes/<int:pk>/product/", quote_product, name="quote_product"),
    path("quotes/<int:pk>/stage/", quote_stage, name="quote_stage"),
    path(
        "quotes/<int:pk>/approval/<str:action>/",
        quote_approval,
        name="quote_approval",
    ),
    path("quotes/<int:pk>/send/", quote_send, name="quote_send"),
    path("quotes/<int:pk>/convert/<str:to>/", quote_convert, name="quote_convert"),
    path("quotes/<int:pk>/pdf/", quote_pdf_view, name="quote_pdf"),
    path("contracts/", contract_list, name="contracts"),
    path("contracts/new/", contract_new, name="contract_new"),
    path("contracts/<int:pk>/", contract_detail, name="contract"),
    path("contracts/<int:pk>/edit/", contract_edit, name="contract_edit"),
    path("contracts/<int:pk>/pdf/", contract_pdf_view, name="contract_pdf"),
    path("contracts/<int:pk>/<str:action>/", contract_action, name="contract_action"),
    path("contract-templates/", contract_template_list, name="contract_templates"),
    path("contract-templates/new/", contract_template_edit, name="contract_template_new"),
    path("contract-templates/<int:pk>/", contract_template_edit, name="contract_template"),
]
