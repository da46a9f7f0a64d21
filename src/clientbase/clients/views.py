"""Client pages: list with search, profile with newsfeed, add and edit."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clientbase.clients import queries, services
from clientbase.clients.forms import ClientForm, CommentForm, NoteForm
from clientbase.core.errors import ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.models import EventCategory
from clientbase.core.permissions import require_action
from clientbase.core.visibility import visible


@login_required
def client_list(request: HttpRequest) -> HttpResponse:
    """Clients the user may see, newest first, with a quick search."""
    text = request.GET.get("q", "")
    found = queries.client_search(request.user, text)
    mine = request.GET.get("mine") == "1"
    if mine:
        found = found.filter(owner=request.user)
    page = Paginator(found, 25).get_page(request.GET.get("page"))
    return render(request, "clients/client_list.html", {"page": page, "q": text, "mine": mine})


@login_required
def client_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A client's profile with its newsfeed, filterable by category."""
    client = queries.client_get(request.user, pk)
    category = request.GET.get("category", "")
    events = visible(client.events.select_related("actor"), request.user)
    if category in EventCategory.values:
        events = events.filter(category=category)
    return render(
        request,
        "clients/client_detail.html",
        {
            "client": client,
            "events": events[:100],
            "category": category,
            "categories": EventCategory.choices,
            "notes": queries.notes_of(request.user, client),
            "note_counts": queries.note_counts(client),
            "note_form": NoteForm(),
        },
    )


@require_action("clients.add")
def client_add(request: HttpRequest) -> HttpResponse:
    """Add a client."""
    form = ClientForm(
        request.POST or None, initial={"owner": request.user, "org_unit": request.user.org_unit}
    )
    if request.method == "POST" and form.is_valid():
        try:
            client = services.client_create(by=request.user, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Client %(number)s added.") % {"number": client.number})
            return redirect("clients:detail", pk=client.pk)
    return render(request, "clients/client_form.html", {"form": form, "client": None})


@login_required
def client_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a client the user may see."""
    client = queries.client_get(request.user, pk)
    if not request.user.has_perm("clients.change"):
        raise PermissionDenied
    form = ClientForm(request.POST or None, instance=client)
    if request.method == "POST" and form.is_valid():
        try:
            services.client_update(client=client, by=request.user, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Client %(number)s saved.") % {"number": client.number})
            return redirect("clients:detail", pk=client.pk)
    return render(request, "clients/client_form.html", {"form": form, "client": client})


@require_action("clients.add_note")
@require_POST
def note_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Write a note on a client the user may see."""
    client = queries.client_get(request.user, pk)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            services.note_add(client=client, by=request.user, **form.cleaned_data)
        except ServiceError as refused:
            messages.error(request, " ".join(refused.messages))
        else:
            messages.success(request, _("Note added."))
    else:
        messages.error(request, _("A note cannot be empty."))
    return redirect(reverse("clients:detail", args=[client.pk]) + "#notes")


@require_action("clients.add_note")
@require_POST
def note_comment(request: HttpRequest, pk: int, note_pk: int) -> HttpResponse:
    """Answer a note of a client the user may see."""
    client = queries.client_get(request.user, pk)
    note = queries.note_get(request.user, client, note_pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        services.note_comment(note=note, by=request.user, body=form.cleaned_data["body"])
        messages.success(request, _("Comment added."))
    else:
        messages.error(request, _("A comment cannot be empty."))
    return redirect(reverse("clients:detail", args=[client.pk]) + f"#note-{note.pk}")
