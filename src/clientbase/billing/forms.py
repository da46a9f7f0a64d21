"""Forms of the billing pages: they parse what a clerk typed; the services decide."""

from django import forms
from django.utils.translation import gettext_lazy as _

from clientbase.billing.models import CreditNote, Invoice, PaymentMethod, Refund, Service
from clientbase.catalog.models import Cycle, Product
from clientbase.core.forms import StyledForm as Styled

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
METHODS = [("", "—"), *PaymentMethod.choices]


class StyledForm(Styled, forms.Form):
    """Bootstrap classes on every widget, invalid fields marked."""


def _products():
    return Product.objects.filter(active=True, kind=Product.Kind.PRODUCT).order_by("name")


class ProductChoiceForm(StyledForm):
    """Product, cycle and quantity; option units come as option_<id> fields of the POST."""

    product = forms.ModelChoiceField(label=_("Product"), queryset=Product.objects.none())
    cycle = forms.ChoiceField(label=_("Billing cycle"), choices=Cycle.choices)
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, initial=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = _products()

    def options_for(self, product: Product, data) -> dict:
        """The option units typed for the product's options ({code: units}); blank: default."""
        chosen = {}
        for option in product.options.all():
            raw = (data.get(f"option_{option.pk}") or "").strip()
            if not raw:
                continue
            try:
                chosen[option.code] = int(raw)
            except ValueError:
                chosen[option.code] = raw  # the service names the option that is not a number
        return chosen


class OrderForm(ProductChoiceForm):
    """A new order for one product."""

    client = forms.CharField(label=_("Client number"), max_length=32)
    price_override = forms.CharField(
        label=_("Price per cycle (override)"),
        required=False,
        help_text=_("Leave blank for the catalogue price with options."),
    )
    promo_code = forms.CharField(label=_("Promo code"), max_length=40, required=False)
    payment_method = forms.ChoiceField(
        label=_("Payment method"),
        choices=METHODS,
        required=False,
        help_text=_("Blank: the client's usual method."),
    )
    send_email = forms.BooleanField(
        label=_("Send the order confirmation by email"), required=False, initial=True
    )
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    field_order = [
        "client",
        "product",
        "cycle",
        "quantity",
        "price_override",
        "promo_code",
        "payment_method",
        "send_email",
        "note",
    ]


class ReasonForm(StyledForm):
    """A reason for a cancellation or status change."""

    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class ServiceActionForm(ReasonForm):
    """Suspend, unsuspend, terminate or cancel a service."""

    ACTIONS = [
        ("suspend", _("Suspend")),
        ("unsuspend", _("Unsuspend")),
        ("terminate", _("Terminate")),
        ("cancel", _("Cancel")),
        ("activate", _("Activate")),
    ]
    action = forms.ChoiceField(label=_("Action"), choices=ACTIONS)
    on = forms.DateField(
        label=_("Effective date"),
        required=False,
        help_text=_("Empty: now. A later day schedules it."),
        widget=forms.DateInput(attrs={"type": "date"}),
    )


class CancelAtEndForm(ReasonForm):
    """Ask for cancellation at the end of the paid period, or withdraw the request."""

    cancel = forms.BooleanField(label=_("Cancel at the end of the period"), required=False)


class ServiceDatesForm(StyledForm):
    """The next due date and the auto-suspension exemption."""

    next_due_on = forms.DateField(label=_("Next due date"), required=False, widget=DATE)
    suspend_exempt_until = forms.DateField(
        label=_("No automatic suspension until"), required=False, widget=DATE
    )


class TransferForm(ReasonForm):
    """Move a service to another client."""

    to_client = forms.CharField(label=_("To client number"), max_length=32)
    field_order = ["to_client", "reason"]


class InvoiceDatesForm(StyledForm):
    """A draft's dates and notes."""

    issued_on = forms.DateField(label=_("Invoice date"), widget=DATE)
    due_on = forms.DateField(label=_("Due date"), widget=DATE)
    notes = forms.CharField(
        label=_("Notes to the client"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class LineForm(StyledForm):
    """A line of a draft; numbers are checked by the service, which names the field."""

    description = forms.CharField(label=_("Description"), max_length=500, required=False)
    quantity = forms.CharField(label=_("Quantity"), initial="1")
    unit_price = forms.CharField(label=_("Unit price"))
    discount_percent = forms.CharField(label=_("Discount, %"), required=False, initial="0")
    tax_rate = forms.CharField(
        label=_("Tax, %"), required=False, help_text=_("Blank: the client's rate.")
    )
    taxable = forms.BooleanField(label=_("Taxable"), required=False, initial=True)
    period_start = forms.DateField(label=_("From"), required=False, widget=DATE)
    period_end = forms.DateField(label=_("To"), required=False, widget=DATE)


class PaymentForm(StyledForm):
    """Money received for one invoice."""

    amount = forms.CharField(label=_("Amount"))
    method = forms.ChoiceField(label=_("Method"), choices=PaymentMethod.choices)
    received_on = forms.DateField(label=_("Received on"), required=False, widget=DATE)
    reference = forms.CharField(label=_("Reference"), max_length=200, required=False)


class ClientPaymentForm(PaymentForm):
    """Money received from a client, spread over its open invoices (inv_<id>, amt_<id>)."""

    client = forms.CharField(label=_("Client number"), max_length=32)
    field_order = ["client", "amount", "method", "received_on", "reference"]


class CreditApplyForm(StyledForm):
    """Pay an invoice from credit; blank takes all the credit it can."""

    amount = forms.CharField(
        label=_("Amount of credit"), required=False, help_text=_("Blank: as much as possible.")
    )


class RefundForm(StyledForm):
    """Give back money paid on an invoice."""

    amount = forms.CharField(label=_("Amount"))
    destination = forms.ChoiceField(label=_("Refund to"), choices=Refund.Destination.choices)
    method = forms.ChoiceField(label=_("Method (paid out)"), choices=METHODS, required=False)
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class CreditNoteForm(StyledForm):
    """A credit note or write-off on an issued invoice."""

    amount = forms.CharField(label=_("Amount"))
    kind = forms.ChoiceField(label=_("Kind"), choices=CreditNote.Kind.choices)
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class CreditAdjustForm(StyledForm):
    """Add to (positive) or take from (negative) a client's credit balance."""

    amount = forms.CharField(label=_("Amount (negative takes credit away)"))
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class CreditTopUpForm(StyledForm):
    """An invoice for credit the client pays in advance."""

    amount = forms.CharField(label=_("Amount"))
    due_days = forms.IntegerField(label=_("Days to pay"), min_value=0, max_value=365, initial=7)


class CreditLimitForm(StyledForm):
    """A client's credit limit in one currency, with its floor and warning thresholds."""

    currency = forms.CharField(label=_("Currency"), max_length=3)
    limit = forms.CharField(
        label=_("Limit"), required=False, help_text=_("Leave empty for no limit.")
    )
    floor = forms.CharField(label=_("Floor"), required=False)
    fixed_thresholds = forms.CharField(
        label=_("Warn at amounts"), required=False, help_text=_("e.g. 5000, 8000")
    )
    percent_thresholds = forms.CharField(
        label=_("Warn at percent of the limit"), required=False, help_text=_("e.g. 80, 90")
    )
    enforce = forms.BooleanField(label=_("Refuse what would pass the limit"), required=False,
                                 initial=True)  # fmt: skip

    def clean_percent_thresholds(self) -> list[int]:
        values = []
        for part in _parts(self.cleaned_data["percent_thresholds"]):
            if not part.isdigit():
                raise forms.ValidationError(_("Write whole percentages, e.g. 80, 90."))
            values.append(int(part))
        return values


def _parts(text: str) -> list[str]:
    return [p.strip() for p in (text or "").replace(";", ",").split(",") if p.strip()]


class CreditPayoutForm(StyledForm):
    """Pay a client's credit balance out."""

    amount = forms.CharField(label=_("Amount"))
    method = forms.ChoiceField(label=_("Method"), choices=PaymentMethod.choices)
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class SendForm(StyledForm):
    """Email an invoice; blank sends to the client's address."""

    to = forms.EmailField(label=_("Send to"), required=False)


ZERO_CHOICES = [("", _("Any balance")), ("yes", _("Zero balance")), ("no", _("Balance due"))]


class BillSearchForm(forms.Form):
    """The bills search (BIL-15) as a GET form."""

    number = forms.CharField(label=_("Number"), required=False)
    date_from = forms.DateField(label=_("From"), required=False, widget=DATE)
    date_to = forms.DateField(label=_("To"), required=False, widget=DATE)
    last = forms.IntegerField(label=_("Last"), required=False, min_value=1, max_value=10000)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *Invoice.Status.choices]
    )
    zero = forms.ChoiceField(label=_("Balance"), required=False, choices=ZERO_CHOICES)
    sort = forms.CharField(required=False, widget=forms.HiddenInput)
    overdue = forms.BooleanField(label=_("Overdue"), required=False)
    run = forms.IntegerField(label=_("Billing run"), required=False, widget=forms.HiddenInput)


SERVICE_STATUS_CHOICES = [("", _("Any status")), *Service.Status.choices]
