"""Forms of the catalogue pages: amounts are typed in major units ("800.00")."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django_countries import countries

from clientbase.catalog.models import Cycle, Product, ProductGroup, PromoCode
from clientbase.catalog.pricing import money_in
from clientbase.core.forms import StyledForm
from clientbase.core.money import Money


def _amount_field(label, required: bool = True) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=required,
        min_value=0,
        max_digits=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "800.00"}),
    )


def _currency_field(required: bool = True) -> forms.CharField:
    return forms.CharField(
        label=_("Currency"),
        required=required,
        max_length=3,
        widget=forms.TextInput(attrs={"placeholder": "EUR", "size": 4}),
    )


class ProductGroupForm(StyledForm, forms.Form):
    """A product group."""

    name = forms.CharField(label=_("Name"), max_length=100)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    position = forms.IntegerField(label=_("Position"), min_value=0, initial=0)


class ProductForm(StyledForm, forms.Form):
    """A product's own fields; prices and options are edited on its page."""

    code = forms.SlugField(label=_("Code"), max_length=40)
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=Product.Kind.choices)
    group = forms.ModelChoiceField(
        label=_("Group"), queryset=ProductGroup.objects.all(), required=False
    )
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    origin = forms.CharField(label=_("Origin"), max_length=100, required=False)
    cost = _amount_field(_("Cost price"), required=False)
    cost_currency = _currency_field(required=False)
    taxable = forms.BooleanField(label=_("Taxable"), required=False, initial=True)
    tax_inclusive = forms.BooleanField(label=_("Prices include tax"), required=False)
    active = forms.BooleanField(label=_("On sale"), required=False, initial=True)
    addon_for = forms.ModelMultipleChoiceField(
        label=_("Addon for"),
        queryset=Product.objects.filter(kind=Product.Kind.PRODUCT),
        required=False,
        help_text=_("For an addon: the products it can be added to."),
    )

    @classmethod
    def for_product(cls, product: Product | None, data=None) -> "ProductForm":
        """The form, filled with a product's values when editing."""
        initial = {}
        if product is not None:
            initial = {
                "code": product.code,
                "name": product.name,
                "kind": product.kind,
                "group": product.group_id,
                "description": product.description,
                "origin": product.origin,
                "cost": Money(product.cost_minor, product.cost_currency).amount
                if product.cost_currency
                else None,
                "cost_currency": product.cost_currency,
                "taxable": product.taxable,
                "tax_inclusive": product.tax_inclusive,
                "active": product.active,
                "addon_for": [p.pk for p in product.addon_for.all()],
            }
        form = cls(data, initial=initial)
        if product is not None:
            form.fields["addon_for"].queryset = form.fields["addon_for"].queryset.exclude(
                pk=product.pk
            )
        return form

    def product_data(self) -> dict:
        """The cleaned fields as product_save takes them (raises ServiceError on the cost)."""
        data = dict(self.cleaned_data)
        cost, currency = data.pop("cost"), data.pop("cost_currency")
        data["cost"] = (
            None
            if cost is None
            else money_in(cost, currency, field="cost", currency_field="cost_currency")
        )
        return data


class PriceForm(StyledForm, forms.Form):
    """One price row: currency, cycle, price and setup fee."""

    currency = _currency_field()
    cycle = forms.ChoiceField(label=_("Billing cycle"), choices=Cycle.choices)
    amount = _amount_field(_("Price"))
    setup_fee = _amount_field(_("Setup fee"), required=False)
    apply_to_existing = forms.BooleanField(
        label=_("Existing services renew at this price"),
        help_text=_("Otherwise only new services get it; existing ones keep their price."),
        required=False,
    )

    def price_data(self) -> dict:
        """The row as price_set takes it (raises ServiceError on bad amounts)."""
        data = self.cleaned_data
        amount = money_in(data["amount"], data["currency"])
        fee = data["setup_fee"]
        return {
            "currency": amount.currency,
            "cycle": data["cycle"],
            "amount": amount,
            "setup_fee": None if fee is None else money_in(fee, amount.currency, field="setup_fee"),
            "apply_to_existing": data["apply_to_existing"],
        }


class OptionForm(StyledForm, forms.Form):
    """A configurable option priced per unit."""

    code = forms.SlugField(label=_("Code"), max_length=40)
    name = forms.CharField(label=_("Name"), max_length=100)
    included_units = forms.IntegerField(label=_("Units included"), min_value=0, initial=0)
    min_units = forms.IntegerField(label=_("Minimum"), min_value=0, initial=0)
    max_units = forms.IntegerField(label=_("Maximum"), min_value=0, required=False)


class OptionPriceForm(StyledForm, forms.Form):
    """What one unit of an option costs per cycle in a currency."""

    currency = _currency_field()
    cycle = forms.ChoiceField(label=_("Billing cycle"), choices=Cycle.choices)
    unit_price = _amount_field(_("Price per unit"))

    def price_data(self) -> dict:
        """The row as option_price_set takes it."""
        data = self.cleaned_data
        unit = money_in(data["unit_price"], data["currency"], field="unit_price")
        return {"currency": unit.currency, "cycle": data["cycle"], "unit_price": unit}


class PromoCodeForm(StyledForm, forms.Form):
    """A promo code: percent, or a fixed amount in one currency."""

    code = forms.CharField(label=_("Code"), max_length=40)
    kind = forms.ChoiceField(label=_("Kind"), choices=PromoCode.Kind.choices)
    percent = forms.DecimalField(
        label=_("Percent"), required=False, min_value=0, max_value=100, decimal_places=2
    )
    amount = _amount_field(_("Amount"), required=False)
    currency = _currency_field(required=False)
    recurring = forms.BooleanField(
        label=_("Recurring"),
        required=False,
        help_text=_("Discount every renewal, not only the first invoice."),
    )
    products = forms.ModelMultipleChoiceField(
        label=_("Products"),
        queryset=Product.objects.all(),
        required=False,
        help_text=_("None chosen: every product."),
    )
    starts_on = forms.DateField(
        label=_("Valid from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    expires_on = forms.DateField(
        label=_("Expires on"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    max_uses = forms.IntegerField(label=_("Use limit"), min_value=1, required=False)
    note = forms.CharField(label=_("Note"), max_length=200, required=False)

    @classmethod
    def for_promo(cls, promo: PromoCode | None, data=None) -> "PromoCodeForm":
        """The form, filled with a code's values when editing."""
        initial = {}
        if promo is not None:
            initial = {
                "code": promo.code,
                "kind": promo.kind,
                "percent": promo.percent if promo.kind == PromoCode.Kind.PERCENT else None,
                "amount": Money(promo.amount_minor, promo.currency).amount
                if promo.currency
                else None,
                "currency": promo.currency,
                "recurring": promo.recurring,
                "products": [p.pk for p in promo.products.all()],
                "starts_on": promo.starts_on,
                "expires_on": promo.expires_on,
                "max_uses": promo.max_uses,
                "note": promo.note,
            }
        return cls(data, initial=initial)

    def promo_data(self) -> dict:
        """The cleaned fields as promo_save takes them."""
        data = dict(self.cleaned_data)
        amount, currency = data.pop("amount"), data.pop("currency")
        if data["kind"] == PromoCode.Kind.FIXED:
            data.pop("percent")
            data["amount"] = None if amount is None else money_in(amount, currency)
        return data


class TaxRuleForm(StyledForm, forms.Form):
    """A tax rate for a country or one of its regions."""

    name = forms.CharField(label=_("Name"), max_length=100)
    country = forms.ChoiceField(label=_("Country"))
    region = forms.CharField(
        label=_("Region"),
        max_length=100,
        required=False,
        help_text=_("Empty: the whole country. A region's own rule wins over the country's."),
    )
    rate = forms.DecimalField(label=_("Rate, %"), min_value=0, max_value=100, decimal_places=3)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["country"].choices = [("", "—"), *countries]
