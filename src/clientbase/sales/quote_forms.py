"""Forms of the quote and contract pages; the services check the business rules."""

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from clientbase.catalog.models import Product
from clientbase.core.forms import StyledForm
from clientbase.sales.models import ContractTemplate, Quote

SMALL = {"class": "form-control-sm"}
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class QuoteForm(StyledForm, forms.Form):
    """A quote's heading: title, dates and notes."""

    title = forms.CharField(label=_("Title"), max_length=200, required=False)
    issued_on = forms.DateField(label=_("Date"), required=False, widget=DATE)
    valid_until = forms.DateField(label=_("Valid until"), required=False, widget=DATE)
    notes = forms.CharField(
        label=_("Notes and terms"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class QuoteLineForm(StyledForm, forms.Form):
    """A line from the catalogue (its price filled in) or written freely."""

    product = forms.ModelChoiceField(
        label=_("Product"),
        queryset=Product.objects.filter(active=True).order_by("name"),
        required=False,
        empty_label=_("Free line"),
    )
    description = forms.CharField(
        label=_("Description"), max_length=500, required=False, widget=forms.TextInput(SMALL)
    )
    quantity = forms.DecimalField(
        label=_("Qty"), max_digits=12, decimal_places=3, initial=1, widget=forms.NumberInput(SMALL)
    )
    unit_price = forms.DecimalField(
        label=_("Unit price"),
        max_digits=18,
        decimal_places=4,
        required=False,
        widget=forms.NumberInput(SMALL),
    )
    discount_percent = forms.DecimalField(
        label=_("Discount, %"),
        max_digits=5,
        decimal_places=2,
        initial=0,
        required=False,
        widget=forms.NumberInput(SMALL),
    )
    taxable = forms.BooleanField(label=_("Taxable"), required=False, initial=True)

    def clean(self):
        data = super().clean()
        product = data.get("product")
        if not product and not data.get("description"):
            self.add_error("description", _("Describe the line or choose a product."))
        if not product and data.get("unit_price") is None:
            self.add_error("unit_price", _("Enter the unit price."))
        data["discount_percent"] = data.get("discount_percent") or Decimal(0)
        return data


class StageForm(StyledForm, forms.Form):
    """Move the quote to another stage; a lost quote says why."""

    stage = forms.ChoiceField(label=_("Stage"), choices=Quote.Stage.choices)
    reason = forms.CharField(label=_("Why lost"), max_length=200, required=False)


class NoteForm(StyledForm, forms.Form):
    """A note with an approval request or decision."""

    note = forms.CharField(label=_("Note"), max_length=500, required=False)


class SendForm(StyledForm, forms.Form):
    """Where the quote goes (the client's address by default)."""

    to = forms.EmailField(label=_("To"), required=False)


class ContractForm(StyledForm, forms.Form):
    """A contract's terms: title, dates, value, template and text."""

    title = forms.CharField(label=_("Title"), max_length=200)
    starts_on = forms.DateField(label=_("Starts"), widget=DATE)
    ends_on = forms.DateField(label=_("Ends"), required=False, widget=DATE)
    value = forms.DecimalField(label=_("Value"), max_digits=17, decimal_places=2, initial=0)
    template = forms.ModelChoiceField(
        label=_("Template"), queryset=ContractTemplate.objects.all(), required=False
    )
    terms = forms.CharField(
        label=_("Terms"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class ContractTemplateForm(StyledForm, forms.Form):
    """A contract template's text with merge tags."""

    name = forms.CharField(label=_("Name"), max_length=100)
    body = forms.CharField(label=_("Text"), widget=forms.Textarea(attrs={"rows": 16}))
    is_default = forms.BooleanField(label=_("Default template"), required=False)
