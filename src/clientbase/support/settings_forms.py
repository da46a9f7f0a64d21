"""Forms of the support settings pages; the services check the business rules."""

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clientbase.accounts.models import OrgUnit, User
from clientbase.core.forms import StyledForm
from clientbase.support.forms import StaffChoiceField
from clientbase.support.models import Department, InboundMail
from clientbase.support.services import DEPARTMENT_FIELDS, TAGS

SLA_MAX = 60 * 24 * 365  # a year: anything longer is a typo, not a promise


def _minutes(label) -> forms.IntegerField:
    return forms.IntegerField(label=label, min_value=1, max_value=SLA_MAX, initial=120)


class DepartmentForm(StyledForm, forms.Form):
    """A department: its address, deadlines per priority, escalation rule and mailbox."""

    name = forms.CharField(label=_("Name"), max_length=100, required=False)
    # A text field, not EmailField: the service checks the address and says what it expects.
    email = forms.CharField(
        label=_("Support address"),
        max_length=254,
        required=False,
        widget=forms.EmailInput,
        help_text=_("Mail to this address becomes a ticket of this department."),
    )
    org_unit = forms.ModelChoiceField(
        label=_("Org unit"),
        queryset=OrgUnit.objects.all(),
        help_text=_("Tickets from guests are seen by this unit."),
    )
    is_default = forms.BooleanField(
        label=_("Default department: mail to an address no department has lands here"),
        required=False,
    )
    position = forms.IntegerField(
        label=_("Place in the list"), min_value=0, max_value=32767, initial=0
    )
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)
    sla_low = _minutes(_("Low"))
    sla_medium = _minutes(_("Medium"))
    sla_high = _minutes(_("High"))
    sla_urgent = _minutes(_("Urgent"))
    escalation = forms.ChoiceField(
        label=_("When a ticket is overdue"), choices=Department.Escalation.choices
    )
    escalate_to = StaffChoiceField(
        label=_("Escalation contact"), queryset=None, required=False, empty_label="—"
    )
    imap_enabled = forms.BooleanField(label=_("Poll a mailbox"), required=False)
    imap_host = forms.CharField(label=_("IMAP server"), max_length=200, required=False)
    imap_port = forms.IntegerField(label=_("IMAP port"), min_value=1, max_value=65535, initial=993)
    imap_ssl = forms.BooleanField(label=_("Use TLS"), required=False, initial=True)
    imap_user = forms.CharField(label=_("IMAP user"), max_length=200, required=False)
    imap_password = forms.CharField(
        label=_("IMAP password"),
        max_length=200,
        required=False,
        strip=False,
        # Write-only: the stored password is never sent back to the browser.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    imap_folder = forms.CharField(
        label=_("IMAP folder"), max_length=200, required=False, initial="INBOX"
    )

    GENERAL = ("name", "email", "org_unit", "position", "is_default", "active")
    DEADLINES = ("sla_low", "sla_medium", "sla_high", "sla_urgent")
    ESCALATION = ("escalation", "escalate_to")
    MAILBOX = (
        "imap_enabled",
        "imap_host",
        "imap_port",
        "imap_ssl",
        "imap_user",
        "imap_password",
        "imap_folder",
    )

    def __init__(self, *args, department: Department | None = None, **kwargs):
        if department is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                f: getattr(department, f"{f}_id" if f in ("org_unit", "escalate_to") else f)
                for f in DEPARTMENT_FIELDS
                if f != "imap_password"
            }
        super().__init__(*args, **kwargs)
        if department is None:
            # Most departments serve the whole company: its top unit is the usual choice.
            top = OrgUnit.objects.filter(parent=None).order_by("pk").first()
            self.fields["org_unit"].initial = top.pk if top else None
        # The current contact stays choosable even after leaving, so the form still saves.
        current = department.escalate_to_id if department is not None else None
        self.fields["escalate_to"].queryset = User.objects.filter(
            Q(is_active=True) | Q(pk=current)
        ).order_by("first_name", "last_name", "username")
        if department is not None and department.imap_password:
            self.fields["imap_password"].help_text = _(
                "A password is stored. Leave this empty to keep it."
            )

    def groups(self) -> list[tuple[str, list]]:
        """The fields in the fieldsets the page shows."""
        return [
            (_("Department"), [self[f] for f in self.GENERAL]),
            (_("Respond within, minutes"), [self[f] for f in self.DEADLINES]),
            (_("Escalation"), [self[f] for f in self.ESCALATION]),
            (_("Mailbox"), [self[f] for f in self.MAILBOX]),
        ]

    def service_fields(self) -> dict:
        """The cleaned values as department_save takes them."""
        data = dict(self.cleaned_data)
        data["imap_folder"] = data["imap_folder"] or "INBOX"
        return data


class ReplyTemplateForm(StyledForm, forms.Form):
    """A canned reply: its name, the department it is offered in and its text with $tags."""

    name = forms.CharField(label=_("Name"), max_length=100, required=False)
    department = forms.ModelChoiceField(
        label=_("Only for department"),
        queryset=Department.objects.all(),
        required=False,
        empty_label=_("Every department"),
    )
    body = forms.CharField(
        label=_("Text"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text=_("Write $$ for a dollar sign."),
    )

    tags = TAGS


class InboundFilterForm(forms.Form):
    """The received mail log narrowed to one outcome."""

    outcome = forms.ChoiceField(
        label=_("Outcome"),
        choices=[("", _("Any")), *InboundMail.Outcome.choices],
        required=False,
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
