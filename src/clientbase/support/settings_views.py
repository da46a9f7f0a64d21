"""Settings pages of support: departments with their deadlines and mailboxes, reply templates,
and the log of received mail with each raw message to download."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _

from clientbase.core.errors import ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.permissions import require_action
from clientbase.support import services
from clientbase.support.models import Department, InboundMail, ReplyTemplate
from clientbase.support.settings_forms import DepartmentForm, InboundFilterForm, ReplyTemplateForm

SETTINGS = "support.settings"
INBOUND_PAGE = 50


# --- departments ------------------------------------------------------------------------------


@require_action(SETTINGS)
def department_list(request: HttpRequest) -> HttpResponse:
    """Every department with its address, deadlines, escalation rule and mailbox."""
    departments = Department.objects.select_related("org_unit", "escalate_to")
    return render(request, "support/department_list.html", {"departments": departments})


def _department_form(request: HttpRequest, department: Department | None) -> HttpResponse:
    form = DepartmentForm(request.POST or None, department=department)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.department_save(
                by=request.user, department=department, **form.service_fields()
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Department %(name)s saved.") % {"name": saved.name})
            return redirect("support:departments")
    return render(
        request,
        "support/department_form.html",
        {"form": form, "department": department},
        status=400 if form.is_bound else 200,
    )


@require_action(SETTINGS)
def department_add(request: HttpRequest) -> HttpResponse:
    """Set up a new department."""
    return _department_form(request, None)


@require_action(SETTINGS)
def department_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a department; an empty password field keeps the stored IMAP password."""
    return _department_form(request, get_object_or_404(Department, pk=pk))


# --- reply templates --------------------------------------------------------------------------


@require_action(SETTINGS)
def reply_template_list(request: HttpRequest) -> HttpResponse:
    """The canned replies agents insert into their answers."""
    templates = ReplyTemplate.objects.select_related("department")
    return render(request, "support/reply_template_list.html", {"templates": templates})


def _reply_template_form(request: HttpRequest, template: ReplyTemplate | None) -> HttpResponse:
    initial = (
        {"name": template.name, "department": template.department_id, "body": template.body}
        if template is not None
        else None
    )
    form = ReplyTemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.reply_template_save(
                by=request.user, template=template, **form.cleaned_data
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Template %(name)s saved.") % {"name": saved.name})
            return redirect("support:templates")
    return render(
        request,
        "support/reply_template_form.html",
        {"form": form, "template": template},
        status=400 if form.is_bound else 200,
    )


@require_action(SETTINGS)
def reply_template_add(request: HttpRequest) -> HttpResponse:
    """Write a new reply template."""
    return _reply_template_form(request, None)


@require_action(SETTINGS)
def reply_template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a reply template."""
    return _reply_template_form(request, get_object_or_404(ReplyTemplate, pk=pk))


@require_action(SETTINGS)
def reply_template_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask, then remove a reply template."""
    template = get_object_or_404(ReplyTemplate, pk=pk)
    if request.method == "POST":
        services.reply_template_delete(by=request.user, template=template)
        messages.success(request, _("Template %(name)s deleted.") % {"name": template.name})
        return redirect("support:templates")
    return render(request, "support/reply_template_delete.html", {"template": template})


# --- received mail ----------------------------------------------------------------------------


@require_action(SETTINGS)
def inbound_list(request: HttpRequest) -> HttpResponse:
    """The log of received mail, newest first, with what became of each message."""
    form = InboundFilterForm(request.GET or None)
    outcome = form.cleaned_data["outcome"] if form.is_valid() else ""
    mails = (
        InboundMail.objects.defer("raw").select_related("ticket").order_by("-received_at", "-id")
    )
    if outcome:
        mails = mails.filter(outcome=outcome)
    page = Paginator(mails, INBOUND_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "support/inbound_list.html",
        {"page": page, "form": form, "outcome": outcome},
    )


@require_action(SETTINGS)
def inbound_raw(request: HttpRequest, pk: int) -> HttpResponse:
    """One received message exactly as it came, to read one whose parsing failed."""
    mail = get_object_or_404(InboundMail, pk=pk)
    response = HttpResponse(bytes(mail.raw), content_type="message/rfc822")
    response["Content-Disposition"] = f'attachment; filename="mail-{mail.pk}.eml"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


urlpatterns = [
    path("departments/", department_list, name="departments"),
    path("departments/new/", department_add, name="department_add"),
    path("departments/<int:pk>/", department_edit, name="department_edit"),
    path("templates/", reply_template_list, name="templates"),
    path("templates/new/", reply_template_add, name="reply_template_add"),
    path("templates/<int:pk>/", reply_template_edit, name="reply_template_edit"),
    path("templates/<int:pk>/delete/", reply_template_delete, name="reply_template_delete"),
    path("received-mail/", inbound_list, name="inbound"),
    path("received-mail/<int:pk>/raw/", inbound_raw, name="inbound_raw"),
]
