"""Client pages: list with search, profile with newsfeed, add and edit."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from clientbase.clients import queries, search, services
from clientbase.clients.forms import (
    DUPLICATE_CHECKED,
    AddressForm,
    ClientForm,
    CommentForm,
    ContactForm,
    DeferredActionForm,
    DeleteForm,
    DocumentForm,
    MergeForm,
    NoteForm,
    StatusForm,
)
from clientbase.clients.models import Address, Client, Contact, DeferredAction, SecurityQuestion
from clientbase.core import customfields, documents
from clientbase.core.errors import ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.models import CustomField, EventCategory
from clientbase.core.permissions import require_action
from clientbase.core.registry import profile_blocks


def _to_profile(client, anchor: str) -> HttpResponse:
    """Back to the client's profile, at the card that was just used."""
    return redirect(reverse("clients:detail", args=[client.pk]) + f"#{anchor}")


LIST_PAGE_SIZE = 25
MAX_CRITERIA = 8


def criteria_from(params) -> tuple[list[search.Criterion], str]:
    """The advanced search's criteria from a query string (c0_field, c0_op, c0_value…)."""
    criteria = []
    for index in range(MAX_CRITERIA):
        field = params.get(f"c{index}_field", "")
        if field:
            criteria.append(
                search.Criterion(
                    field=field,
                    op=params.get(f"c{index}_op", "contains"),
                    value=params.get(f"c{index}_value", ""),
                    value2=params.get(f"c{index}_value2", ""),
                )
            )
    return criteria, "any" if params.get("match") == "any" else "all"


def listed_clients(request: HttpRequest) -> tuple[QuerySet, dict[str, list[str]]]:
    """The clients a list or export shows: quick or advanced search, then the filters."""
    criteria, match = criteria_from(request.GET)
    errors: dict[str, list[str]] = {}
    if criteria:
        try:
            found = search.advanced_search(request.user, criteria, match=match)
        except ServiceError as refused:
            found, errors = Client.objects.none(), refused.message_dict
    else:
        found = search.client_search_queryset(request.user, request.GET.get("q", ""))
    if request.GET.get("mine") == "1":
        found = found.filter(owner=request.user)
    if request.GET.get("unmanaged") == "1":
        found = found.filter(owner__isnull=True)
    return found, errors


@login_required
def client_list(request: HttpRequest) -> HttpResponse:
    """Clients the user may see, newest first, a page at a time (keyset: any page is as fast
    as the first), with a quick search and an advanced one."""
    found, errors = listed_clients(request)
    after = request.GET.get("after", "")
    page = search.keyset_page(
        found.select_related("owner"),
        after=int(after) if after.isdigit() else None,
        size=LIST_PAGE_SIZE,
    )
    criteria, match = criteria_from(request.GET)
    rows = [*criteria, *[search.Criterion(field="", op="contains")] * (2 if not criteria else 1)]
    return render(
        request,
        "clients/client_list.html",
        {
            "page": page,
            "q": request.GET.get("q", ""),
            "mine": request.GET.get("mine") == "1",
            "unmanaged": request.GET.get("unmanaged") == "1",
            "advanced": bool(criteria) or request.GET.get("advanced") == "1",
            "criteria_rows": [
                (index, row, errors.get(f"criteria.{index}", []))
                for index, row in enumerate(rows[:MAX_CRITERIA])
            ],
            "match": match,
            "search_fields": search.search_fields(),
            "operators": OPERATORS,
            "criteria_errors": errors,
            "next_query": _with_after(request, page.next_after),
            "first_query": _with_after(request, None),
            "paged": after.isdigit(),
        },
    )


OPERATORS = [
    ("contains", gettext_lazy("contains")),
    ("equals", gettext_lazy("is exactly")),
    ("like", gettext_lazy("matches (% wildcards)")),
    ("between", gettext_lazy("between")),
    ("is", gettext_lazy("is")),
    ("empty", gettext_lazy("is empty")),
    ("not_empty", gettext_lazy("is not empty")),
]


def _with_after(request: HttpRequest, after: int | None) -> str:
    params = request.GET.copy()
    params.pop("after", None)
    if after is not None:
        params["after"] = str(after)
    return params.urlencode()


PROFILE_TABS = (
    "notes",
    "newsfeed",
    "documents",
    "group",
    "services",
    "invoices",
    "transactions",
    "tickets",
    "sales",
)


def _support_figures(client) -> dict:
    from clientbase.support.queries import client_support

    support = client_support(client)
    return {"open_tickets": support.open, "open_complaint": support.complaints > 0}


@login_required
def client_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A client's profile: summary blocks, the file, and tabs for notes, history, documents
    and the group of companies."""
    client = queries.client_get(request.user, pk)
    category = request.GET.get("category", "")
    reference = request.GET.get("ref", "")
    tab = request.GET.get("tab", "")
    if tab not in PROFILE_TABS:
        tab = "newsfeed" if category or reference else "notes"
    context = {
        "client": client,
        "tab": tab,
        "note_counts": queries.note_counts(client),
        **_support_figures(client),
        "status_form": StatusForm(),
        "deferred_actions": queries.deferred_actions_of(request.user, client),
        "status_choices": Client.Status.choices,
        "contacts": client.contacts.prefetch_related("phones").order_by("id"),
        "addresses": client.addresses.all(),
        "security_questions": client.security_questions.all(),
        "custom_values": _custom_values(request, client),
        "blocks": profile_blocks(request.user, client),
        "documents_count": queries.documents_of(request.user, client).count(),
        "members_count": Client.objects.filter(parent=client).count(),
    }
    if tab == "notes":
        context |= {"notes": queries.notes_of(request.user, client), "note_form": NoteForm()}
    elif tab == "newsfeed":
        context |= {
            "events": queries.newsfeed_of(
                request.user, client, category=category, reference=reference
            )[:200],
            "category": category,
            "reference": reference,
            "categories": EventCategory.choices,
        }
    elif tab == "documents":
        context |= {
            "documents": queries.documents_of(request.user, client),
            "document_form": DocumentForm(),
        }
    elif tab in ("services", "invoices", "transactions"):
        from clientbase.billing.views import profile_tab

        context |= profile_tab(request.user, client, tab)
    elif tab == "tickets":
        from clientbase.support.views import profile_tab as tickets_tab

        context |= tickets_tab(request.user, client)
    elif tab == "sales":
        from clientbase.sales.activity_views import profile_tab as sales_tab

        context |= sales_tab(request.user, client)
    else:
        context["group"] = queries.group_tree(request.user, client)
    return render(request, "clients/client_detail.html", context)


def _custom_values(request: HttpRequest, client: Client) -> list[tuple[str, object]]:
    """The client's custom values as the user may read them, in the fields' order."""
    may_see = request.user.has_perm("clients.view_secrets")
    shown = []
    for field in customfields.fields_for(kind=client.kind):
        value = client.custom.get(field.code)
        if value is None:
            continue
        if field.type == CustomField.Type.BOOLEAN:
            value = _("Yes") if value else _("No")
        shown.append((field.label, customfields.shown_value(field, value, may_see_secrets=may_see)))
    return shown


@login_required
def duplicate_check(request: HttpRequest) -> HttpResponse:
    """While a clerk types: which existing clients already have this email, phone or id."""
    field = next((n for n in DUPLICATE_CHECKED if n in request.GET), "")
    found = []
    if field:
        value = services.normalized_for_duplicates(
            field,
            request.GET[field],
            country=request.GET.get("country", ""),
            kind=request.GET.get("kind", ""),
        )
        if value:
            exclude = request.GET.get("exclude", "")
            found = search.find_duplicates(
                user=request.user,
                **{field: value},
                exclude_id=int(exclude) if exclude.isdigit() else None,
            )
    return render(request, "clients/_duplicates.html", {"duplicates": found, "field": field})


FORM_MODE = "clientbase_client_form_mode"


def _form_mode(request: HttpRequest) -> str:
    """The client form's mode: asked for in the address, else the one last used."""
    if request.GET.get("mode") in ("simple", "advanced"):
        request.session[FORM_MODE] = request.GET["mode"]
    return request.session.get(FORM_MODE, "simple")


@require_action("clients.add")
def client_add(request: HttpRequest) -> HttpResponse:
    """Add a client."""
    form = ClientForm(
        request.POST or None,
        initial={"owner": request.user, "org_unit": request.user.org_unit},
        mode=_form_mode(request),
        user=request.user,
    )
    if request.method == "POST" and form.is_valid():
        try:
            client = services.client_create(by=request.user, **form.client_data())
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Client %(number)s added.") % {"number": client.number})
            return redirect("clients:detail", pk=client.pk)
    return render(request, "clients/client_form.html", {"form": form, "client": None})


@login_required
def client_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a client the user may see."""
    client = _editable_client(request, pk)
    form = ClientForm(
        request.POST or None, instance=client, mode=_form_mode(request), user=request.user
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.client_update(
                client=client,
                by=request.user,
                expected_version=form.cleaned_data["version"],
                **form.client_data(),
            )
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
    return _to_profile(client, "notes")


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
    return _to_profile(client, f"note-{note.pk}")


@require_action("clients.change_status")
@require_POST
def status_change(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an account's status now, backdated, or on a later day."""
    client = queries.client_get(request.user, pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            messages.error(request, f"{label}: {' '.join(errors)}" if label else " ".join(errors))
        return _to_profile(client, "status")
    try:
        outcome = services.client_set_status(client=client, by=request.user, **form.cleaned_data)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        if isinstance(outcome, DeferredAction):
            messages.success(
                request, _("Status change scheduled for %(day)s.") % {"day": outcome.due_on}
            )
        else:
            messages.success(
                request, _("Status is now %(status)s.") % {"status": outcome.get_status_display()}
            )
    return _to_profile(client, "status")


@require_action("clients.change_status")
def deferred_action_edit(request: HttpRequest, pk: int, action_pk: int) -> HttpResponse:
    """Edit a pending deferred action."""
    client = queries.client_get(request.user, pk)
    action = queries.deferred_action_get(request.user, client, action_pk)
    initial = {"due_on": action.due_on, **action.params}
    form = DeferredActionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.deferred_action_update(action=action, by=request.user, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Deferred action saved."))
            return _to_profile(client, "status")
    return render(
        request,
        "clients/deferred_action_form.html",
        {"client": client, "action": action, "form": form},
    )


@require_action("clients.change_status")
@require_POST
def deferred_action_execute(request: HttpRequest, pk: int, action_pk: int) -> HttpResponse:
    """Run a pending deferred action now."""
    client = queries.client_get(request.user, pk)
    action = queries.deferred_action_get(request.user, client, action_pk)
    try:
        action = services.deferred_action_execute(action=action, by=request.user)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        if action.state == DeferredAction.State.DONE:
            messages.success(request, _("Deferred action done."))
        else:
            messages.error(request, _("It could not run: %(why)s") % {"why": action.result})
    return _to_profile(client, "status")


@require_action("clients.change_status")
@require_POST
def deferred_action_delete(request: HttpRequest, pk: int, action_pk: int) -> HttpResponse:
    """Delete a deferred action that has not run."""
    client = queries.client_get(request.user, pk)
    action = queries.deferred_action_get(request.user, client, action_pk)
    try:
        services.deferred_action_delete(action=action, by=request.user)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Deferred action deleted."))
    return _to_profile(client, "status")


def _editable_client(request: HttpRequest, pk: int):
    client = queries.client_get(request.user, pk)
    if not request.user.has_perm("clients.change"):
        raise PermissionDenied
    return client


def contact_edit(request: HttpRequest, pk: int, contact_pk: int | None = None) -> HttpResponse:
    """Add a contact to a client, or change one."""
    client = _editable_client(request, pk)
    contact = get_object_or_404(Contact, client=client, pk=contact_pk) if contact_pk else None
    initial = {}
    if contact is not None:
        initial = {
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "position": contact.position,
            "email": contact.email,
        } | {f"phone_{p.type}": p.number for p in contact.phones.all()}
    form = ContactForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            if contact is None:
                services.contact_add(client=client, by=request.user, **form.contact_data())
            else:
                services.contact_update(contact=contact, by=request.user, **form.contact_data())
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Contact saved."))
            return _to_profile(client, "contacts")
    return render(
        request, "clients/contact_form.html", {"client": client, "contact": contact, "form": form}
    )


@require_POST
def contact_delete(request: HttpRequest, pk: int, contact_pk: int) -> HttpResponse:
    """Remove a contact other than the first."""
    client = _editable_client(request, pk)
    contact = get_object_or_404(Contact, client=client, pk=contact_pk)
    try:
        services.contact_delete(contact=contact, by=request.user)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Contact removed."))
    return _to_profile(client, "contacts")


def address_edit(request: HttpRequest, pk: int, address_pk: int | None = None) -> HttpResponse:
    """Add an address to a client, or change one."""
    client = _editable_client(request, pk)
    address = get_object_or_404(Address, client=client, pk=address_pk) if address_pk else None
    form = AddressForm(
        request.POST or None,
        instance=address,
        initial={"country": client.country} if address is None else None,
    )
    if request.method == "POST" and form.is_valid():
        try:
            if address is None:
                services.address_add(client=client, by=request.user, **form.cleaned_data)
            else:
                services.address_update(address=address, by=request.user, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Address saved."))
            return _to_profile(client, "addresses")
    return render(
        request, "clients/address_form.html", {"client": client, "address": address, "form": form}
    )


@require_POST
def address_delete(request: HttpRequest, pk: int, address_pk: int) -> HttpResponse:
    """Remove an address."""
    client = _editable_client(request, pk)
    address = get_object_or_404(Address, client=client, pk=address_pk)
    services.address_delete(address=address, by=request.user)
    messages.success(request, _("Address removed."))
    return _to_profile(client, "addresses")


@require_POST
def security_question_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a security question and its (hashed) answer."""
    client = _editable_client(request, pk)
    try:
        services.security_question_add(
            client=client,
            by=request.user,
            question=request.POST.get("question", ""),
            answer=request.POST.get("answer", ""),
        )
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Security question added."))
    return _to_profile(client, "security")


@login_required
@require_POST
def security_answer_check(request: HttpRequest, pk: int, question_pk: int) -> HttpResponse:
    """Check the answer a caller gives on the phone; the outcome goes to the newsfeed."""
    client = queries.client_get(request.user, pk)
    item = get_object_or_404(SecurityQuestion, client=client, pk=question_pk)
    if services.security_answer_check(
        item=item, by=request.user, answer=request.POST.get("answer", "")
    ):
        messages.success(
            request, _("Right answer to “%(question)s”.") % {"question": item.question}
        )
    else:
        messages.error(request, _("Wrong answer to “%(question)s”.") % {"question": item.question})
    return _to_profile(client, "security")


@require_POST
def security_question_delete(request: HttpRequest, pk: int, question_pk: int) -> HttpResponse:
    """Remove a security question."""
    client = _editable_client(request, pk)
    item = get_object_or_404(SecurityQuestion, client=client, pk=question_pk)
    services.security_question_delete(item=item, by=request.user)
    messages.success(request, _("Security question removed."))
    return _to_profile(client, "security")


@require_action("clients.merge")
def client_merge(request: HttpRequest, pk: int) -> HttpResponse:
    """Fold another client into this one, after the clerk has seen both side by side."""
    survivor = _editable_client(request, pk)
    form = MergeForm(request.POST or request.GET or None, user=request.user, survivor=survivor)
    merged = form.merged_client() if form.is_bound and form.is_valid() else None
    if request.method == "POST" and merged is not None and form.cleaned_data["confirm"]:
        try:
            services.client_merge(survivor=survivor, merged=merged, by=request.user)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(
                request,
                _("Client %(merged)s merged into %(survivor)s.")
                % {"merged": merged.number, "survivor": survivor.number},
            )
            return redirect("clients:detail", pk=survivor.pk)
    return render(
        request,
        "clients/client_merge.html",
        {"client": survivor, "form": form, "merged": merged},
    )


@require_action("clients.delete")
def client_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a client after the clerk types its number and gives a reason."""
    client = queries.client_get(request.user, pk)
    form = DeleteForm(request.POST or None, client=client)
    if request.method == "POST" and form.is_valid():
        try:
            services.client_delete(
                client=client, reason=form.cleaned_data["reason"], by=request.user
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Client %(number)s deleted.") % {"number": client.number})
            return redirect("clients:list")
    return render(request, "clients/client_delete.html", {"client": client, "form": form})


def _to_tab(client, tab: str) -> HttpResponse:
    return redirect(reverse("clients:detail", args=[client.pk]) + f"?tab={tab}")


@login_required
@require_POST
def document_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Attach a document or photo to a client."""
    client = _editable_client(request, pk)
    form = DocumentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            documents.document_add(
                client=client,
                upload=form.cleaned_data["file"],
                description=form.cleaned_data["description"],
                by=request.user,
            )
        except ServiceError as refused:
            messages.error(request, " ".join(refused.messages))
        else:
            messages.success(request, _("Document attached."))
    else:
        messages.error(request, " ".join(m for ms in form.errors.values() for m in ms))
    return _to_tab(client, "documents")


@login_required
def document_download(request: HttpRequest, pk: int, document_pk: int) -> FileResponse:
    """A client's document: photos shown in the page, other files downloaded."""
    client = queries.client_get(request.user, pk)
    document = queries.document_get(request.user, client, document_pk)
    inline = document.is_image and request.GET.get("inline") == "1"
    response = FileResponse(
        document.file.open("rb"),
        as_attachment=not inline,
        filename=document.name,
        content_type=document.content_type,
    )
    # The type was checked at upload; the browser must not guess another.
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def document_delete(request: HttpRequest, pk: int, document_pk: int) -> HttpResponse:
    """Remove a document from a client."""
    client = _editable_client(request, pk)
    document = queries.document_get(request.user, client, document_pk)
    documents.document_delete(document=document, by=request.user)
    messages.success(request, _("Document removed."))
    return _to_tab(client, "documents")
