"""Forms of the lead pages, distribution rules and web forms; the services check the rules."""

import json
from decimal import Decimal

from django import forms
from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from clientbase.accounts.models import OrgUnit, User
from clientbase.core.forms import StyledForm
from clientbase.core.money import Money
from clientbase.sales.models import DistributionRule, Lead
from clientbase.support.forms import StaffChoiceField

DUPLICATE_CHECKED = ("email", "phone", "tax_id")


def _staff():
    return User.objects.filter(is_active=True).order_by("first_name", "last_name", "username")


class LeadForm(StyledForm, forms.Form):
    """A lead's details; the owner left empty hands the lead to the distribution rules."""

    kind = forms.ChoiceField(label=_("Kind"), choices=Lead.Kind.choices)
    civility = forms.CharField(label=_("Civility"), max_length=20, required=False)
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    company = forms.CharField(label=_("Company"), max_length=200, required=False)
    position_title = forms.CharField(label=_("Position"), max_length=100, required=False)
    email = forms.CharField(label=_("Email"), max_length=254, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=32, required=False)
    tax_id = forms.CharField(label=_("Tax id"), max_length=32, required=False)
    street = forms.CharField(label=_("Street"), max_length=200, required=False)
    postcode = forms.CharField(label=_("Postcode"), max_length=20, required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    region = forms.CharField(label=_("Region"), max_length=100, required=False)
    country = forms.CharField(
        label=_("Country"), max_length=2, required=False, help_text=_("Two letters, e.g. FR.")
    )
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    source = forms.CharField(label=_("Source"), max_length=100, required=False)
    campaign = forms.CharField(label=_("Campaign"), max_length=100, required=False)
    potential = forms.DecimalField(
        label=_("Potential"), min_value=Decimal(0), max_digits=16, decimal_places=2, required=False
    )
    currency = forms.CharField(label=_("Currency"), max_length=3, initial=settings.DEFAULT_CURRENCY)
    needs = forms.CharField(
        label=_("Needs"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    next_step = forms.CharField(label=_("Next step"), max_length=200, required=False)
    next_step_on = forms.DateField(
        label=_("Next step on"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    owner = StaffChoiceField(
        label=_("Owner"),
        queryset=_staff(),
        required=False,
        empty_label=_("— distribute automatically —"),
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    SECTIONS = (
        (_("Who"), ("kind", "civility", "name", "company", "position_title")),
        (_("How to reach them"), ("email", "phone", "tax_id", "language")),
        (_("Where"), ("street", "postcode", "city", "region", "country")),
        (
            _("The opportunity"),
            ("source", "campaign", "potential", "currency", "owner", "next_step", "next_step_on"),
        ),
    )

    def __init__(self, *args, lead: Lead | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = _staff()
        for name in DUPLICATE_CHECKED:
            self.fields[name].widget.attrs.update(
                {
                    "data-duplicate-check": name,
                    "hx-get": reverse("sales:lead_duplicates"),
                    "hx-trigger": "load, input changed delay:250ms, change",
                    "hx-target": f"#duplicates-{name}",
                    "hx-include": "[name=country],[name=kind]",
                    "hx-vals": json.dumps({"exclude": lead.pk if lead else ""}),
                    "hx-sync": "this:replace",
                }
            )

    @property
    def sections(self):
        """The fields grouped as the page shows them."""
        return [(label, [self[name] for name in names]) for label, names in self.SECTIONS]

    @staticmethod
    def initial_for(lead: Lead) -> dict:
        """The form's values for an existing lead."""
        initial = {
            name: getattr(lead, name) for name in LeadForm.base_fields if hasattr(lead, name)
        }
        initial["potential"] = Money(lead.potential_minor, lead.currency).amount
        initial["owner"] = lead.owner_id
        return initial

    def service_fields(self) -> dict:
        """The cleaned values as the lead services take them."""
        data = dict(self.cleaned_data)
        data.pop("version", None)
        potential = data.pop("potential")
        currency = (data.get("currency") or "").strip().upper()
        data["currency"] = currency
        try:
            data["potential_minor"] = (
                Money.from_decimal(potential, currency).minor if potential else 0
            )
        except ValueError:
            data["potential_minor"] = 0
        return data


class LeadContactForm(StyledForm, forms.Form):
    """Another person at the lead's company."""

    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    position_title = forms.CharField(label=_("Position"), max_length=100, required=False)
    email = forms.CharField(label=_("Email"), max_length=254, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=32, required=False)


class ConvertForm(StyledForm, forms.Form):
    """Converting a lead: whether to open a deal, its name and value."""

    create_deal = forms.BooleanField(label=_("Open a deal too"), required=False, initial=True)
    deal_name = forms.CharField(label=_("Deal name"), max_length=200, required=False)
    deal_value = forms.DecimalField(
        label=_("Deal value"), min_value=Decimal(0), max_digits=16, decimal_places=2, required=False
    )
    existing_client = forms.IntegerField(widget=forms.HiddenInput, required=False)


class DistributionRuleForm(StyledForm, forms.Form):
    """Who gets new leads of a source or campaign, and how they take turns."""

    name = forms.CharField(label=_("Name"), max_length=100, required=False)
    source = forms.CharField(
        label=_("Source"), max_length=100, required=False, help_text=_("Empty: any source.")
    )
    campaign = forms.CharField(
        label=_("Campaign"), max_length=100, required=False, help_text=_("Empty: any campaign.")
    )
    method = forms.ChoiceField(label=_("Method"), choices=DistributionRule.Method.choices)
    members = forms.ModelMultipleChoiceField(
        label=_("People"),
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    position = forms.IntegerField(
        label=_("Place in the list"), min_value=0, max_value=32767, initial=0
    )
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = _staff()
        self.fields["members"].label_from_instance = lambda user: user.display_name


class WebFormForm(StyledForm, forms.Form):
    """A web form's settings: where its leads go and how many it takes an hour."""

    name = forms.CharField(label=_("Name"), max_length=100, required=False)
    source = forms.CharField(label=_("Source"), max_length=100, initial="web form")
    campaign = forms.CharField(label=_("Campaign"), max_length=100, required=False)
    org_unit = forms.ModelChoiceField(
        label=_("Org unit"),
        queryset=OrgUnit.objects.all(),
        help_text=_("Leads from this form belong to this unit until distributed."),
    )
    currency = forms.CharField(label=_("Currency"), max_length=3, initial=settings.DEFAULT_CURRENCY)
    per_hour_limit = forms.IntegerField(
        label=_("Submissions per hour from one address"), min_value=1, max_value=10_000, initial=20
    )
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)
