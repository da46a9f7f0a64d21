"""Forms of the ticket pages; the services check the business rules."""

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clientbase.accounts.models import User
from clientbase.core.forms import StyledForm
from clientbase.support.models import Department, Priority, ReplyTemplate, Ticket


class MultipleFileInput(forms.ClearableFileInput):
    """A file input that takes several files at once."""

    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files; each is checked by the service when it is stored."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


def _staff():
    return User.objects.filter(is_active=True).order_by("first_name", "last_name", "username")


class StaffChoiceField(forms.ModelChoiceField):
    """A member of staff, shown by name."""

    def label_from_instance(self, obj: User) -> str:
        return obj.display_name


class OpenTicketForm(StyledForm, forms.Form):
    """Open a ticket for a client (or a guest by email): the first message is mailed to them."""

    department = forms.ModelChoiceField(
        label=_("Department"), queryset=Department.objects.filter(active=True)
    )
    email = forms.EmailField(
        label=_("Email"),
        required=False,
        help_text=_("For a client, empty means the client's own address."),
    )
    name = forms.CharField(label=_("Name"), required=False, max_length=200)
    subject = forms.CharField(label=_("Subject"), max_length=300)
    priority = forms.ChoiceField(label=_("Priority"), choices=Priority.choices, initial="medium")
    body = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 8}))
    cc = forms.CharField(
        label=_("CC"), required=False, help_text=_("Addresses separated by commas.")
    )
    assignee = StaffChoiceField(label=_("Assignee"), queryset=_staff(), required=False)
    is_complaint = forms.BooleanField(label=_("This is a complaint"), required=False)
    attachments = MultipleFileField(label=_("Attachments"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = _staff()
        default = Department.objects.filter(is_default=True, active=True).first()
        if default is not None:
            self.fields["department"].initial = default.pk


class ReplyForm(StyledForm, forms.Form):
    """A reply to the customer, and the status the ticket takes after it."""

    body = forms.CharField(label=_("Reply"), widget=forms.Textarea(attrs={"rows": 7}))
    cc = forms.CharField(label=_("CC"), required=False)
    status = forms.ChoiceField(
        label=_("Then"),
        choices=[
            (Ticket.Status.ANSWERED, _("Mark answered")),
            (Ticket.Status.IN_PROGRESS, _("Keep in progress")),
            (Ticket.Status.ON_HOLD, _("Put on hold")),
            (Ticket.Status.CLOSED, _("Close the ticket")),
        ],
        initial=Ticket.Status.ANSWERED,
    )
    attachments = MultipleFileField(label=_("Attachments"))
    version = forms.IntegerField(widget=forms.HiddenInput)


class NoteForm(StyledForm, forms.Form):
    """An internal note for colleagues."""

    body = forms.CharField(label=_("Internal note"), widget=forms.Textarea(attrs={"rows": 3}))


class PropertiesForm(StyledForm, forms.Form):
    """Priority, CC and the complaint flag of a ticket."""

    priority = forms.ChoiceField(label=_("Priority"), choices=Priority.choices)
    cc = forms.CharField(label=_("CC"), required=False)
    is_complaint = forms.BooleanField(label=_("Complaint"), required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)


class AssignForm(StyledForm, forms.Form):
    """Give the ticket to somebody, with a note for them."""

    assignee = StaffChoiceField(
        label=_("Assignee"), queryset=_staff(), required=False, empty_label=_("Nobody")
    )
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = _staff()


class TransferForm(StyledForm, forms.Form):
    """Move the ticket to another department (and person)."""

    department = forms.ModelChoiceField(
        label=_("Department"), queryset=Department.objects.filter(active=True)
    )
    assignee = StaffChoiceField(
        label=_("Assignee"), queryset=_staff(), required=False, empty_label=_("Nobody")
    )
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = _staff()
        self.fields["department"].queryset = Department.objects.filter(active=True)


class MergeForm(StyledForm, forms.Form):
    """Merge this ticket into another one, named by its number."""

    target = forms.CharField(label=_("Merge into ticket number"), max_length=32)


def reply_templates_for(ticket: Ticket):
    """The reply templates offered on a ticket: general ones and its department's."""
    return ReplyTemplate.objects.filter(
        Q(department=None) | Q(department=ticket.department_id)
    ).order_by("name")
