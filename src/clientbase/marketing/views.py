"""Pages of the marketing module: message templates with a live preview, composing a message
from a card, and the SMS outbox."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from clientbase.core.errors import ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.permissions import require_action
from clientbase.marketing import queries, services, templating
from clientbase.marketing.forms import ComposeForm, TemplateForm
from clientbase.marketing.models import MessageTemplate
from clientbase.marketing.sms import sms_length

MANAGE = "marketing.templates"
WORK = "sales.work"
RECORD_KEYS = ("client", "contact", "lead", "deal", "invoice")
OUTBOX_PAGE = 50


def _id(value: str | None) -> int | None:
    """A record id from a query or form value; anything else is no record."""
    return int(value) if value and value.isdigit() and len(value) < 19 else None


def _records(request: HttpRequest, data) -> queries.Records:
    return queries.records_for(request.user, **{key: _id(data.get(key)) for key in RECORD_KEYS})


def _preview(source_subject: str, body: str, channel: str, context: dict) -> dict:
    """What the preview panel shows: the filled-in text, or why it cannot be filled in."""
    shown: dict = {"channel": channel}
    try:
        if channel == MessageTemplate.Channel.EMAIL:
            shown["subject"] = templating.render(source_subject, context)
        shown["body"] = templating.render(body, context)
    except ServiceError as refused:
        shown["error"] = refused.message_dict["body"][0]
        return shown
    if channel == MessageTemplate.Channel.SMS:
        shown["length"] = sms_length(shown["body"].strip())
    return shown


# --- templates -------------------------------------------------------------------------


@require_action(MANAGE)
def template_list(request: HttpRequest) -> HttpResponse:
    """Message templates, all or of one channel."""
    channel = request.GET.get("channel", "")
    if channel not in MessageTemplate.Channel.values:
        channel = ""
    return render(
        request,
        "marketing/template_list.html",
        {
            "templates": queries.templates(channel=channel),
            "channel": channel,
            "channels": MessageTemplate.Channel.choices,
        },
    )


def _template_form(request: HttpRequest, template: MessageTemplate | None) -> HttpResponse:
    form = TemplateForm(request.POST or None, initial=TemplateForm.initial_for(template))
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.template_save(by=request.user, template=template, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Template %(name)s saved.") % {"name": saved.name})
            return redirect(f"{reverse('marketing:templates')}?channel={saved.channel}")
    return render(
        request,
        "marketing/template_form.html",
        {
            "form": form,
            "template": template,
            "groups": templating.TAG_GROUPS,
            "filters": templating.ALLOWED_FILTERS,
            "example_clients": queries.example_clients(request.user),
            "example_leads": queries.example_leads(request.user),
            "preview": _preview(
                form["subject"].value() or "",
                form["body"].value() or "",
                form["channel"].value() or "email",
                templating.example_context(),
            ),
        },
        status=400 if form.is_bound else 200,
    )


@require_action(MANAGE)
def template_add(request: HttpRequest) -> HttpResponse:
    """Write a new message template."""
    return _template_form(request, None)


@require_action(MANAGE)
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a message template."""
    return _template_form(request, get_object_or_404(MessageTemplate, pk=pk))


@require_action(MANAGE)
def template_preview(request: HttpRequest) -> HttpResponse:
    """The template being edited, filled in for a chosen client or lead (or the examples)."""
    if request.method != "POST":
        raise Http404
    records = queries.records_for(
        request.user,
        client=_id(request.POST.get("example_client")),
        lead=_id(request.POST.get("example_lead")),
    )
    context = (
        templating.merge_context(user=request.user, **records.as_kwargs())
        if records.any
        else templating.example_context()
    )
    channel = request.POST.get("channel", "")
    if channel not in MessageTemplate.Channel.values:
        channel = MessageTemplate.Channel.EMAIL
    preview = _preview(
        request.POST.get("subject", ""), request.POST.get("body", ""), channel, context
    )
    return render(request, "marketing/_preview.html", {"preview": preview})


@require_action(MANAGE)
def template_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask, then remove a message template."""
    template = get_object_or_404(MessageTemplate, pk=pk)
    if request.method == "POST":
        services.template_delete(by=request.user, template=template)
        messages.success(request, _("Template %(name)s deleted.") % {"name": template.name})
        return redirect("marketing:templates")
    return render(request, "marketing/template_delete.html", {"template": template})


# --- composing and sending -------------------------------------------------------------


def _card_url(records: queries.Records) -> str:
    """The card the message was written from, to go back to once it is sent."""
    if records.deal is not None:
        return reverse("sales:deal", args=[records.deal.pk])
    if records.lead is not None:
        return reverse("sales:lead", args=[records.lead.pk])
    if records.invoice is not None:
        return reverse("billing:invoice", args=[records.invoice.pk])
    client = records.client or (records.contact.client if records.contact else None)
    if client is not None:
        return reverse("clients:detail", args=[client.pk])
    return reverse("marketing:compose")


def _record_label(records: queries.Records) -> str:
    parts = []
    if records.client is not None:
        parts.append(f"{records.client.number} {records.client.name}")
    if records.contact is not None:
        parts.append(str(records.contact))
    if records.lead is not None:
        parts.append(f"{records.lead.number} {records.lead.name}")
    if records.deal is not None:
        parts.append(f"{records.deal.number} {records.deal.name}")
    if records.invoice is not None:
        parts.append(records.invoice.number or _("draft invoice"))
    return " · ".join(parts)


@require_action(WORK)
def compose(request: HttpRequest) -> HttpResponse:
    """Write an email or SMS about a record (`?client=`, `?lead=`, …), from a template or not."""
    data = request.POST if request.method == "POST" else request.GET
    records = _records(request, data)
    ids = {key: data.get(key) for key in RECORD_KEYS if _id(data.get(key))}
    channel = data.get("channel", "")
    if channel not in MessageTemplate.Channel.values:
        channel = MessageTemplate.Channel.EMAIL
    initial: dict = {"channel": channel}
    fill_error = ""
    if request.method == "GET":
        template_id = _id(request.GET.get("template"))
        if template_id:
            template = get_object_or_404(MessageTemplate, pk=template_id, active=True)
            channel = template.channel
            try:
                draft = services.template_apply(by=request.user, template=template, records=records)
            except ServiceError as refused:
                # Shown above the fields: the writer fills in by hand what has no value here.
                fill_error = refused.messages[0]
                draft = services.Draft(
                    template.subject, template.body, services.recipient_address(channel, records)
                )
            initial = {
                "template": template.pk,
                "channel": channel,
                "to": draft.to,
                "subject": draft.subject,
                "body": draft.body,
            }
        else:
            initial["to"] = services.recipient_address(channel, records)
    form = ComposeForm(
        request.POST if request.method == "POST" else None, initial=initial, channel=channel
    )
    # Choosing a template reloads the fields filled in for the same records.
    form.fields["template"].widget.attrs.update(
        {
            "hx-get": f"{reverse('marketing:compose')}?{urlencode({**ids, 'channel': channel})}",
            "hx-target": "#compose-fields",
            "hx-select": "#compose-fields",
            "hx-swap": "outerHTML",
        }
    )
    if request.method == "POST" and form.is_valid():
        fields = form.cleaned_data
        try:
            sent = services.message_send(
                by=request.user,
                channel=fields["channel"],
                to=fields["to"],
                subject=fields.get("subject", ""),
                body=fields["body"],
                template=fields["template"],
                **records.as_kwargs(),
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Message sent to %(to)s and logged.") % {"to": sent.to})
            return redirect(_card_url(records))
    return render(
        request,
        "marketing/compose.html",
        {
            "form": form,
            "records": records,
            "record_label": _record_label(records),
            "ids": ids,
            "query": urlencode(ids),
            "channel": channel,
            "fill_error": fill_error,
            "back": _card_url(records),
            "groups": templating.TAG_GROUPS,
        },
        status=400 if form.is_bound else 200,
    )


@require_action(WORK)
def compose_preview(request: HttpRequest) -> HttpResponse:
    """The message being written, filled in for its records, as it will go out."""
    if request.method != "POST":
        raise Http404
    records = _records(request, request.POST)
    context = templating.merge_context(user=request.user, **records.as_kwargs())
    channel = request.POST.get("channel", "")
    if channel not in MessageTemplate.Channel.values:
        channel = MessageTemplate.Channel.EMAIL
    preview = _preview(
        request.POST.get("subject", ""), request.POST.get("body", ""), channel, context
    )
    return render(request, "marketing/_preview.html", {"preview": preview})


@require_action(WORK)
def sms_outbox(request: HttpRequest) -> HttpResponse:
    """Text messages sent about clients and leads in sight, with what the gateway said."""
    page = Paginator(queries.sms_outbox(request.user), OUTBOX_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "marketing/sms_outbox.html", {"page": page})


urlpatterns = [
    path("templates/", template_list, name="templates"),
    path("templates/new/", template_add, name="template_add"),
    path("templates/preview/", template_preview, name="template_preview"),
    path("templates/<int:pk>/", template_edit, name="template_edit"),
    path("templates/<int:pk>/delete/", template_delete, name="template_delete"),
    path("compose/", compose, name="compose"),
    path("compose/preview/", compose_preview, name="compose_preview"),
    path("sms/", sms_outbox, name="sms_outbox"),
]
