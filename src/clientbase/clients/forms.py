"""The client form (the full client file arrives with the clients module)."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from clientbase.accounts.models import OrgUnit, User
from clientbase.clients.models import Address, Client, ContactPhone
from clientbase.clients.services import ADDRESS_FIELDS, EDITABLE
from clientbase.core.forms import StyledForm


class ClientForm(StyledForm, forms.ModelForm):
    # The version the form was drawn from: a save over someone else's change is refused.
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    """Kind, name, contact, currency, language, owner and unit of a client."""

    class Meta:
        model = Client
        fields = list(EDITABLE)
        widgets = {"language": forms.Select(choices=settings.LANGUAGES)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = User.objects.filter(is_active=True).order_by("username")
        self.fields["org_unit"].queryset = OrgUnit.objects.order_by("path")
        self.fields["currency"].initial = settings.DEFAULT_CURRENCY
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version


class NoteForm(StyledForm, forms.Form):
    """A new note on the account."""

    body = forms.CharField(
        label=_("Note"),
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": _("Write a note…")}),
    )
    important = forms.BooleanField(label=_("Important: pin to the top"), required=False)


class CommentForm(StyledForm, forms.Form):
    """An answer to a note."""

    body = forms.CharField(
        label=_("Comment"),
        widget=forms.Textarea(attrs={"rows": 1, "placeholder": _("Answer this note…")}),
    )


class StatusForm(StyledForm, forms.Form):
    """A status change: to what, why, from when (a later day schedules it)."""

    status = forms.ChoiceField(label=_("New status"), choices=Client.Status.choices)
    reason = forms.CharField(label=_("Reason"), max_length=200)
    effective = forms.DateField(
        label=_("Effective"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Leave empty for now; an earlier day backdates, a later day schedules."),
    )
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class DeferredActionForm(StyledForm, forms.Form):
    """A pending status change, as it may still be edited."""

    due_on = forms.DateField(label=_("Due on"), widget=forms.DateInput(attrs={"type": "date"}))
    status = forms.ChoiceField(label=_("New status"), choices=Client.Status.choices)
    reason = forms.CharField(label=_("Reason"), max_length=200)
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class ContactForm(StyledForm, forms.Form):
    """A contact with one phone field per type."""

    first_name = forms.CharField(label=_("First name"), max_length=100, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=100)
    position = forms.CharField(label=_("Position"), max_length=100, required=False)
    email = forms.CharField(label=_("Email"), max_length=254, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for kind, label in ContactPhone.Type.choices:
            field = forms.CharField(label=label, max_length=32, required=False)
            field.widget.attrs.update({"class": "form-control", "inputmode": "tel"})
            self.fields[f"phone_{kind}"] = field

    @property
    def phones(self) -> dict[str, str]:
        """The numbers typed, by phone type ("" for none)."""
        return {kind: self.cleaned_data.get(f"phone_{kind}", "") for kind in ContactPhone.Type}

    def contact_data(self) -> dict:
        """The fields the contact services take."""
        names = ("first_name", "last_name", "position", "email")
        return {name: self.cleaned_data[name] for name in names} | {"phones": self.phones}


class AddressForm(StyledForm, forms.ModelForm):
    """A typed address."""

    class Meta:
        model = Address
        fields = list(ADDRESS_FIELDS)
        widgets = {"notes": forms.TextInput()}
