"""Forms of the client file: the client, notes, status, contacts and addresses."""

import json

from django import forms
from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from clientbase.accounts.models import OrgUnit, User
from clientbase.clients.models import Address, Client, ContactPhone
from clientbase.clients.queries import clients_for
from clientbase.clients.services import ADDRESS_FIELDS, EDITABLE
from clientbase.core import customfields
from clientbase.core.forms import StyledForm
from clientbase.core.models import CustomField

# The form's sections, in order; fields marked with a * show in the simplified mode too.
CLIENT_SECTIONS: list[tuple[str, list[str]]] = [
    (_("Client"), ["kind*", "first_name*", "last_name*", "company_name*"]),
    (_("Contact"), ["email*", "phone*", "country*"]),
    (_("Identifiers"), ["tax_id*", "kpp", "national_id"]),
    (_("Address"), ["street", "postcode", "city"]),
    (
        _("Billing"),
        [
            "currency*",
            "payment_method",
            "group",
            "tax_exempt",
            "separate_invoices",
            "billing_day",
            "auto_apply_credit",
            "suspend_exempt_until",
            "late_fee_exempt",
            "no_overdue_notices",
            "no_card_autopay",
        ],
    ),
    (
        _("Ownership and provenance"),
        [
            "owner*",
            "org_unit*",
            "sales_manager",
            "source",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "referred_by",
            "tags",
        ],
    ),
    (_("Group of companies"), ["parent", "bill_to_parent"]),
    (
        _("Consent and preferences"),
        [
            "consent_email",
            "consent_sms",
            "consent_api",
            "language",
            "preferred_channel",
            "notices_opted_out",
        ],
    ),
]
CUSTOM_PREFIX = "custom."
# Fields whose value is checked against other clients while the clerk types (CUS-3).
DUPLICATE_CHECKED = ("email", "phone", "tax_id", "national_id")
SIMPLE_FIELDS = {f.rstrip("*") for _label, fields in CLIENT_SECTIONS for f in fields if "*" in f}
# Fields shown for one kind only (the page hides the others as the kind changes).
KIND_ONLY = {
    "first_name": "individual",
    "last_name": "individual",
    "company_name": "company",
    "kpp": "company",
}


class ClientForm(StyledForm, forms.ModelForm):
    """The client file; `mode` "simple" keeps the essentials, "advanced" shows everything.

    Fields outside the mode are left out of the form entirely, so saving in the simplified
    mode never clears what was entered in the advanced one.
    """

    # The version the form was drawn from: a save over someone else's change is refused.
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Client
        fields = [f for f in EDITABLE if f not in ("name", "custom")]
        widgets = {"language": forms.Select(choices=settings.LANGUAGES)}

    notices_opted_out = forms.MultipleChoiceField(
        label=_("Notices the client does not want"),
        choices=Client.Notice.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, mode: str = "advanced", user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode = mode
        if mode == "simple":
            for name in [n for n in self.fields if n not in SIMPLE_FIELDS and n != "version"]:
                del self.fields[name]
        users = User.objects.filter(is_active=True).order_by("username")
        for name in ("owner", "sales_manager"):
            if name in self.fields:
                self.fields[name].queryset = users
        self.fields["org_unit"].queryset = OrgUnit.objects.order_by("path")
        self.fields["currency"].initial = settings.DEFAULT_CURRENCY
        for name, kind in KIND_ONLY.items():
            if name in self.fields:
                self.fields[name].widget.attrs["data-kind-only"] = kind
        # Referrer and parent are typed by client number: a list of a million would not do.
        for name, label in (
            ("referred_by", _("Referred by (client number)")),
            ("parent", _("Parent company (client number)")),
        ):
            if name in self.fields:
                self.fields[name] = forms.ModelChoiceField(
                    queryset=Client.objects.all() if user is None else clients_for(user),
                    to_field_name="number",
                    required=False,
                    label=label,
                    widget=forms.TextInput(attrs={"class": "form-control", "inputmode": "numeric"}),
                    error_messages={
                        "invalid_choice": _("No client with this number in your view.")
                    },
                )
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version
        for name in DUPLICATE_CHECKED:
            if name in self.fields:
                # htmx asks the server while the clerk types (CUS-3).
                self.fields[name].widget.attrs.update(
                    {
                        "data-duplicate-check": name,
                        "hx-get": reverse("clients:duplicates"),
                        "hx-trigger": "load, input changed delay:250ms, change",
                        "hx-target": f"#duplicates-{name}",
                        "hx-include": "[name=country],[name=kind]",
                        "hx-vals": json.dumps({"exclude": self.instance.pk or ""}),
                        "hx-sync": "this:replace",
                    }
                )
        if "preferred_channel" in self.fields:
            self.fields["preferred_channel"].required = False
        self.custom_fields = customfields.fields_for(mode=mode)
        stored = self.instance.custom if self.instance.pk else {}
        for field in self.custom_fields:
            self.fields[CUSTOM_PREFIX + field.code] = _custom_form_field(
                field, stored.get(field.code)
            )
        self.style_fields()

    def client_data(self) -> dict:
        """The cleaned values as the services take them, custom fields under `custom`."""
        data = {k: v for k, v in self.cleaned_data.items() if k != "version"}
        if not data.get("preferred_channel"):
            data.pop("preferred_channel", None)  # left out: the client keeps its channel
        custom = {}
        for field in self.custom_fields:
            value = data.pop(CUSTOM_PREFIX + field.code, None)
            if field.type == CustomField.Type.SECRET and not value:
                continue  # an empty secret box keeps the secret; it is never shown again
            custom[field.code] = "" if value is None else value
        data["custom"] = custom
        return data

    def _post_clean(self):
        """Leave the model checks to the services: they name what is wrong at its field
        (e.g. which client already has the email) instead of a constraint's name."""

    def sections(self) -> list[tuple[str, list]]:
        """The visible fields grouped under their headings."""
        grouped = []
        for label, names in CLIENT_SECTIONS:
            fields = [self[n.rstrip("*")] for n in names if n.rstrip("*") in self.fields]
            if fields:
                grouped.append((label, fields))
        if self.custom_fields:
            custom = [self[CUSTOM_PREFIX + f.code] for f in self.custom_fields]
            grouped.append((_("Additional details"), custom))
        return grouped


def _custom_form_field(field: CustomField, stored) -> forms.Field:
    """The form field for a custom field; the services check the value itself."""
    common = {"label": field.label, "help_text": field.help_text, "required": False}
    if field.type == CustomField.Type.CHOICE:
        choices = [("", "—"), *[(c, c) for c in field.choices]]
        if stored and stored not in field.choices:
            # A choice since removed stays selectable for the clients that have it.
            choices.append((stored, stored))
        made = forms.ChoiceField(choices=choices, initial=stored, **common)
    elif field.type == CustomField.Type.BOOLEAN:
        made = forms.TypedChoiceField(
            choices=[("", "—"), ("yes", _("Yes")), ("no", _("No"))],
            initial={True: "yes", False: "no"}.get(stored, ""),
            **common,
        )
    elif field.type == CustomField.Type.DATE:
        made = forms.CharField(
            widget=forms.DateInput(attrs={"type": "date"}), initial=stored, **common
        )
    elif field.type == CustomField.Type.SECRET:
        made = forms.CharField(
            widget=forms.PasswordInput(
                attrs={
                    "autocomplete": "off",
                    "placeholder": _("Kept; type to replace") if stored else "",
                }
            ),
            **common,
        )
    elif field.type == CustomField.Type.NUMBER:
        made = forms.CharField(
            widget=forms.TextInput(attrs={"inputmode": "decimal"}), initial=stored, **common
        )
    else:
        made = forms.CharField(initial=stored, max_length=customfields.MAX_TEXT, **common)
    if field.for_individuals != field.for_companies:
        made.widget.attrs["data-kind-only"] = "individual" if field.for_individuals else "company"
    return made


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


class DocumentForm(StyledForm, forms.Form):
    """A file or photo to attach; its content is checked by the service."""

    file = forms.FileField(label=_("File"))
    description = forms.CharField(label=_("Description"), max_length=500, required=False)


class MergeForm(StyledForm, forms.Form):
    """Which client to fold into this one, and the clerk's confirmation."""

    other = forms.CharField(
        label=_("Number of the client to merge into this one"),
        max_length=32,
        help_text=_("Its contacts, addresses, documents and history move here; it is closed."),
    )
    confirm = forms.BooleanField(
        label=_("I have compared both clients; merge them"), required=False
    )

    def __init__(self, *args, user, survivor: Client, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.survivor = user, survivor

    def clean_other(self) -> str:
        from clientbase.clients.queries import clients_for

        number = self.cleaned_data["other"].strip()
        self._merged = clients_for(self.user).filter(number=number).first()
        if self._merged is None:
            raise forms.ValidationError(_("No client with this number in your view."))
        if self._merged.pk == self.survivor.pk:
            raise forms.ValidationError(_("Choose another client than this one."))
        return number

    def merged_client(self) -> Client | None:
        """The client chosen to be merged away, once the form is valid."""
        return getattr(self, "_merged", None)


class DeleteForm(StyledForm, forms.Form):
    """Deleting a client: the clerk types its number and says why."""

    number = forms.CharField(label=_("Type the client number to confirm"), max_length=32)
    reason = forms.CharField(label=_("Reason"), max_length=500)

    def __init__(self, *args, client: Client, **kwargs):
        super().__init__(*args, **kwargs)
        self.client = client

    def clean_number(self) -> str:
        number = self.cleaned_data["number"].strip()
        if number != self.client.number:
            raise forms.ValidationError(
                _("Type %(number)s to confirm.") % {"number": self.client.number}
            )
        return number
