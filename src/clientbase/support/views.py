"""Ticket pages: the list with its counters, a ticket's thread and actions, opening one, and
the customer's own read-only view of their ticket."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clientbase.clients.queries import client_get
from clientbase.core.errors import ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.permissions import require_action
from clientbase.support import queries, services
from clientbase.support.forms import (
    AssignForm,
    MergeForm,
    NoteForm,
    OpenTicketForm,
    PropertiesForm,
    ReplyForm,
    TransferForm,
    reply_templates_for,
)
from clientbase.support.models import (
    Attachment,
    Department,
    Priority,
    Ticket,
    TicketMessage,
    TicketRating,
)

WORK = "support.work"


def _filters(request: HttpRequest) -> queries.TicketFilters:
    get = request.GET

    def number(name: str) -> int | None:
        value = get.get(name, "")
        return int(value) if value.isdigit() and len(value) < 19 else None

    return queries.TicketFilters(
        status=get.get("status", "")[:20],
        department=number("department"),
        priority=get.get("priority", "")[:10],
        assignee=get.get("assignee", "")[:19],
        client=number("client"),
        overdue=get.get("overdue") == "1",
        complaint=get.get("complaint") == "1",
        q=get.get("q", "")[:200],
    )


@login_required
def ticket_list(request: HttpRequest) -> HttpResponse:
    """Tickets with their counters on top: awaiting reply, overdue, my queue."""
    filters = _filters(request)
    after = request.GET.get("after", "")
    page = queries.ticket_page(
        request.user, filters, after=int(after) if after.isdigit() and len(after) < 19 else None
    )
    kept = {k: v for k, v in request.GET.items() if k != "after" and v}
    next_query = urlencode({**kept, "after": page.next_after}) if page.next_after else ""
    counts = {
        "awaiting": queries.count_upto(queries.awaiting_reply(request.user)),
        "overdue": queries.count_upto(queries.overdue(request.user)),
        "mine": queries.count_upto(queries.my_queue(request.user)),
    }
    return render(
        request,
        "support/ticket_list.html",
        {
            "page": page,
            "filters": filters,
            "next_query": next_query,
            "departments": Department.objects.all(),
            "statuses": Ticket.Status.choices,
            "priorities": Priority.choices,
            "counts": counts,
            "count_labels": {key: queries.count_label(n) for key, n in counts.items()},
            "filtered": bool(kept),
        },
    )


@require_action(WORK)
def ticket_open(request: HttpRequest) -> HttpResponse:
    """Open a ticket for a client (from the profile's quick action) or for a guest."""
    client = None
    client_id = request.GET.get("client") or request.POST.get("client") or ""
    if client_id.isdigit() and len(client_id) < 19:
        client = client_get(request.user, int(client_id))
    form = OpenTicketForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ticket = services.ticket_open(
                by=request.user,
                department=data["department"],
                subject=data["subject"],
                body=data["body"],
                client=client,
                email=data["email"],
                name=data["name"],
                priority=data["priority"],
                cc=data["cc"],
                assignee=data["assignee"],
                is_complaint=data["is_complaint"],
                attachments=_uploads(data["attachments"]),
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Ticket #%(number)s opened.") % {"number": ticket.number})
            return redirect("support:ticket", ticket.number)
    return render(
        request,
        "support/ticket_open.html",
        {"form": form, "client": client},
        status=400 if form.is_bound else 200,
    )


def _uploads(files) -> list[services.NewAttachment]:
    return [
        services.NewAttachment(f.name, f.content_type or "application/octet-stream", f.read())
        for f in files or []
    ]


def _detail_context(request: HttpRequest, ticket: Ticket, **forms) -> dict:
    user = request.user
    thread = queries.thread(ticket)
    first_customer = next((m for m in thread if m.kind == TicketMessage.Kind.CUSTOMER), None)
    suggestion_text = f"{ticket.subject} {first_customer.body[:2000] if first_customer else ''}"
    return {
        "ticket": ticket,
        "thread": thread,
        "reply_form": forms.get("reply_form")
        or ReplyForm(initial={"cc": ", ".join(ticket.cc), "version": ticket.version}),
        "note_form": forms.get("note_form") or NoteForm(),
        "properties_form": forms.get("properties_form")
        or PropertiesForm(
            initial={
                "priority": ticket.priority,
                "cc": ", ".join(ticket.cc),
                "is_complaint": ticket.is_complaint,
                "version": ticket.version,
            }
        ),
        "assign_form": forms.get("assign_form")
        or AssignForm(initial={"assignee": ticket.owner_id}),
        "transfer_form": forms.get("transfer_form")
        or TransferForm(initial={"department": ticket.department_id}),
        "merge_form": forms.get("merge_form") or MergeForm(),
        "templates": reply_templates_for(ticket),
        "suggestions": queries.suggested_articles(suggestion_text),
        "rating": TicketRating.objects.filter(ticket=ticket).first(),
        "may_work": user.has_perm(WORK),
        "other_tickets": [
            t for t in queries.client_tickets(user, ticket.client, limit=6) if t.pk != ticket.pk
        ][:5]
        if ticket.client_id
        else [],
        "complaint": ticket.client_id and queries.has_open_complaint(ticket.client),
    }


@login_required
def ticket_detail(request: HttpRequest, number: str) -> HttpResponse:
    """A ticket: its thread, the reply and note forms, and its routing actions."""
    ticket = queries.ticket_get(request.user, number)
    return render(request, "support/ticket_detail.html", _detail_context(request, ticket))


def _workable(request: HttpRequest, number: str) -> Ticket:
    ticket = queries.ticket_get(request.user, number)
    if not request.user.has_perm(WORK):
        raise PermissionDenied
    return ticket


def _refused(request, ticket, status=400, **forms) -> HttpResponse:
    return render(
        request,
        "support/ticket_detail.html",
        _detail_context(request, ticket, **forms),
        status=status,
    )


@require_POST
@login_required
def ticket_reply(request: HttpRequest, number: str) -> HttpResponse:
    """Send a reply to the customer (mailed after commit)."""
    ticket = _workable(request, number)
    form = ReplyForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.ticket_reply(
                by=request.user,
                ticket=ticket,
                body=data["body"],
                cc=data["cc"],
                status=data["status"],
                attachments=_uploads(data["attachments"]),
                version=data["version"],
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Reply sent to %(email)s.") % {"email": ticket.email})
            return redirect("support:ticket", ticket.number)
    return _refused(request, ticket, reply_form=form)


@require_POST
@login_required
def ticket_note(request: HttpRequest, number: str) -> HttpResponse:
    """Add an internal note."""
    ticket = _workable(request, number)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            services.ticket_note(by=request.user, ticket=ticket, body=form.cleaned_data["body"])
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Note added."))
            return redirect("support:ticket", ticket.number)
    return _refused(request, ticket, note_form=form)


@require_POST
@login_required
def ticket_properties(request: HttpRequest, number: str) -> HttpResponse:
    """Change priority, CC and the complaint flag."""
    ticket = _workable(request, number)
    form = PropertiesForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.ticket_update(
                by=request.user,
                ticket=ticket,
                priority=data["priority"],
                cc=data["cc"],
                is_complaint=data["is_complaint"],
                version=data["version"],
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Ticket saved."))
            return redirect("support:ticket", ticket.number)
    return _refused(request, ticket, properties_form=form)


@require_POST
@login_required
def ticket_assign(request: HttpRequest, number: str) -> HttpResponse:
    """Give the ticket to somebody."""
    ticket = _workable(request, number)
    form = AssignForm(request.POST)
    if form.is_valid():
        try:
            services.ticket_assign(
                by=request.user,
                ticket=ticket,
                assignee=form.cleaned_data["assignee"],
                note=form.cleaned_data["note"],
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Ticket assigned."))
            return redirect("support:ticket", ticket.number)
    return _refused(request, ticket, assign_form=form)


@require_POST
@login_required
def ticket_transfer(request: HttpRequest, number: str) -> HttpResponse:
    """Move the ticket to another department."""
    ticket = _workable(request, number)
    form = TransferForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.ticket_transfer(
                by=request.user,
                ticket=ticket,
                department=data["department"],
                assignee=data["assignee"],
                note=data["note"],
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(
                request, _("Ticket moved to %(department)s.") % {"department": data["department"]}
            )
            return redirect("support:ticket", ticket.number)
    return _refused(request, ticket, transfer_form=form)


@require_POST
@login_required
def ticket_status(request: HttpRequest, number: str) -> HttpResponse:
    """Close, reopen, hold or take up a ticket."""
    ticket = _workable(request, number)
    status = request.POST.get("status", "")
    try:
        if status == Ticket.Status.CLOSED:
            services.ticket_close(by=request.user, ticket=ticket)
        elif status == "reopen":
            services.ticket_reopen(by=request.user, ticket=ticket)
        else:
            services.ticket_set_status(by=request.user, ticket=ticket, status=status)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Ticket saved."))
    return redirect("support:ticket", ticket.number)


@require_POST
@login_required
def ticket_merge(request: HttpRequest, number: str) -> HttpResponse:
    """Merge this ticket into another."""
    ticket = _workable(request, number)
    if not request.user.has_perm("support.merge"):
        raise PermissionDenied
    form = MergeForm(request.POST)
    if form.is_valid():
        target_number = form.cleaned_data["target"].strip().lstrip("#")
        target = (
            queries.tickets_for(request.user)
            .filter(number__in=[target_number, target_number.zfill(6)])
            .first()
        )
        if target is None:
            form.add_error("target", _("No ticket with this number that you may see."))
        else:
            try:
                services.ticket_merge(by=request.user, source=ticket, target=target)
            except ServiceError as refused:
                add_service_errors(form, refused)
            else:
                messages.success(
                    request,
                    _("Ticket #%(source)s merged into #%(target)s.")
                    % {"source": ticket.number, "target": target.number},
                )
                return redirect("support:ticket", target.number)
    return _refused(request, ticket, merge_form=form)


@require_POST
@login_required
def message_to_note(request: HttpRequest, number: str, message_pk: int) -> HttpResponse:
    """Copy a contact change the customer reported into an important client note (ACT-1)."""
    ticket = _workable(request, number)
    if not request.user.has_perm("clients.add_note"):
        raise PermissionDenied
    message = get_object_or_404(TicketMessage, pk=message_pk, ticket=ticket, kind="customer")
    try:
        services.contact_change_note(by=request.user, message=message)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Copied to an important note on the client."))
    return redirect("support:ticket", ticket.number)


@login_required
def template_fill(request: HttpRequest, number: str) -> HttpResponse:
    """A reply template filled for this ticket, for the reply box (htmx)."""
    ticket = queries.ticket_get(request.user, number)
    template_id = request.GET.get("template", "")
    template = reply_templates_for(ticket).filter(
        pk=int(template_id) if template_id.isdigit() and len(template_id) < 19 else 0
    )
    form = ReplyForm(initial={"cc": ", ".join(ticket.cc), "version": ticket.version})
    if template.exists():
        try:
            form.initial["body"] = services.template_render(template.get(), ticket, request.user)
        except ServiceError as refused:
            form.initial["body"] = ""
            messages.error(request, " ".join(refused.messages))
    return render(request, "support/_reply_body.html", {"reply_form": form})


@login_required
def suggestions(request: HttpRequest) -> HttpResponse:
    """Knowledge base articles that match what is being written (htmx)."""
    text = request.GET.get("body", "")[:4000]
    return render(
        request, "support/_suggestions.html", {"suggestions": queries.suggested_articles(text)}
    )


@login_required
def attachment_download(request: HttpRequest, pk: int) -> FileResponse:
    """A file that came with a ticket message, always downloaded, never shown inline."""
    attachment = get_object_or_404(Attachment.objects.select_related("message__ticket"), pk=pk)
    queries.ticket_get(request.user, attachment.message.ticket.number)  # 404 when out of sight
    if not attachment.file:
        raise Http404
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.name,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


def guest_ticket(request: HttpRequest, key: str) -> HttpResponse:
    """The customer's view of their ticket through the secret link in our mail (no sign-in)."""
    ticket = (
        Ticket.objects.select_related("department", "merged_into").filter(access_key=key).first()
        if 20 <= len(key) <= 40
        else None
    )
    if ticket is None:
        raise Http404
    if ticket.merged_into_id is not None:
        return redirect("support:guest_ticket", ticket.merged_into.access_key)
    thread = queries.thread(ticket, customer_view=True)
    return render(request, "support/guest_ticket.html", {"ticket": ticket, "thread": thread})


def profile_tab(user, client) -> dict:
    """What the client profile's Tickets tab shows: every ticket of the client."""
    return {"tickets": queries.client_tickets(user, client), "ticket_client": client}


urlpatterns = [
    path("", ticket_list, name="tickets"),
    path("new/", ticket_open, name="open"),
    path("suggest/", suggestions, name="suggest"),
    path("attachment/<int:pk>/", attachment_download, name="attachment"),
    path("view/<str:key>/", guest_ticket, name="guest_ticket"),
    path("t/<str:number>/", ticket_detail, name="ticket"),
    path("t/<str:number>/reply/", ticket_reply, name="reply"),
    path("t/<str:number>/note/", ticket_note, name="note"),
    path("t/<str:number>/properties/", ticket_properties, name="properties"),
    path("t/<str:number>/assign/", ticket_assign, name="assign"),
    path("t/<str:number>/transfer/", ticket_transfer, name="transfer"),
    path("t/<str:number>/status/", ticket_status, name="status"),
    path("t/<str:number>/merge/", ticket_merge, name="merge"),
    path("t/<str:number>/template/", template_fill, name="template_fill"),
    path("t/<str:number>/m/<int:message_pk>/to-note/", message_to_note, name="message_to_note"),
]
