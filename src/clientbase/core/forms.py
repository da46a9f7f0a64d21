"""Form helpers shared by every module."""

from django import forms
from django.utils.translation import gettext_lazy as _

from clientbase.core.errors import ServiceError
from clientbase.core.models import CustomField


def add_service_errors(form: forms.Form, error: ServiceError) -> None:
    """Show a service's refusal at the fields it names (or above the form)."""
    for field, messages in error.message_dict.items():
        target = field if field in form.fields else None
        for message in messages:
            form.add_error(target, message)
        if target is not None:
            widget = form.fields[target].widget
            if "is-invalid" not in widget.attrs.get("class", ""):
                widget.attrs["class"] = widget.attrs.get("class", "") + " is-invalid"
            widget.attrs["aria-invalid"] = "true"


def _css_class(widget: forms.Widget) -> str:
    if isinstance(widget, forms.CheckboxInput | forms.CheckboxSelectMultiple):
        return "form-check-input"
    if isinstance(widget, forms.Select | forms.SelectMultiple):
        return "form-select"
    return "form-control"


class StyledForm:
    """Mixin: gives every widget its Bootstrap class and marks invalid fields."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.style_fields()

    def style_fields(self) -> None:
        """Give each widget its Bootstrap class (again, for fields added since)."""
        for field in self.fields.values():
            css = field.widget.attrs.get("class", "")
            wanted = _css_class(field.widget)
            if wanted not in css.split():
                field.widget.attrs["class"] = f"{css} {wanted}".strip()

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = widget.attrs.get("class", "") + " is-invalid"
                widget.attrs["aria-invalid"] = "true"


class CustomFieldForm(StyledForm, forms.ModelForm):
    """An administrator's definition of a custom field; choices one per line."""

    choices = forms.CharField(
        label=_("Choices"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("For a choice field: one choice per line."),
    )
    required_when_field = forms.ChoiceField(label=_("Required when field"), required=False)

    class Meta:
        from clientbase.core.customfields import EDITABLE

        model = CustomField
        fields = [f for f in EDITABLE if f != "choices"]

    def __init__(self, *args, **kwargs):
        from clientbase.core.customfields import condition_fields

        super().__init__(*args, **kwargs)
        conditions = condition_fields()
        if self.instance.pk:
            conditions.pop(f"custom.{self.instance.code}", None)
            self.fields["code"].disabled = True
            self.fields["choices"].initial = "\n".join(self.instance.choices)
        self.fields["required_when_field"].choices = [("", "—"), *conditions.items()]
        order = list(self.fields)
        order.insert(order.index("help_text"), order.pop(order.index("choices")))
        self.order_fields(order)

    def _post_clean(self):
        """The service checks the definition and names what is wrong."""

    def field_data(self) -> dict:
        """The cleaned definition as the service takes it."""
        data = dict(self.cleaned_data)
        data["choices"] = data["choices"].splitlines()
        if self.instance.pk:
            data.pop("code")
        return data
