"""Forms of the deal pages and pipeline settings; the services check the business rules."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from clientbase.accounts.models import User
from clientbase.clients.queries import clients_for
from clientbase.core.forms import StyledForm
from clientbase.sales.models import Activity, Pipeline, Stage


class StaffChoiceField(forms.ModelChoiceField):
    """A member of staff, shown by name."""

    def label_from_instance(self, obj: User) -> str:
        return obj.display_name


def staff():
    """Active staff, by name."""
    return User.objects.filter(is_active=True).order_by("first_name", "last_name", "username")


class DealForm(StyledForm, forms.Form):
    """A deal's details; where it stands changes by moving it on the board."""

    name = forms.CharField(label=_("Name"), max_length=200)
    value = forms.DecimalField(
        label=_("Value"), min_value=0, max_digits=18, decimal_places=4, required=False
    )
    currency = forms.CharField(label=_("Currency"), max_length=3, min_length=3, required=False)
    pipeline = forms.ModelChoiceField(
        label=_("Pipeline"), queryset=Pipeline.objects.none(), required=False
    )
    expected_close = forms.DateField(
        label=_("Expected close"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    campaign = forms.CharField(label=_("Campaign"), max_length=100, required=False)
    client = forms.ModelChoiceField(label=_("Client"), queryset=None, required=False)
    owner = StaffChoiceField(label=_("Owner"), queryset=staff(), required=False)
    notes = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, user, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = clients_for(user).order_by("name")
        self.fields["pipeline"].queryset = Pipeline.objects.filter(
            kind=Pipeline.Kind.DEAL, active=True
        )
        if editing:
            del self.fields["pipeline"]

    def clean_currency(self) -> str:
        return (self.cleaned_data.get("currency") or settings.DEFAULT_CURRENCY).upper()


class PipelineForm(StyledForm, forms.Form):
    """A pipeline's name and kind."""

    name = forms.CharField(label=_("Name"), max_length=100)
    kind = forms.ChoiceField(label=_("For"), choices=Pipeline.Kind.choices)
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)


class StageForm(StyledForm, forms.Form):
    """A stage: name, meaning, probability, colour, what it requires."""

    name = forms.CharField(label=_("Name"), max_length=100)
    state = forms.ChoiceField(label=_("Meaning"), choices=Stage.State.choices)
    probability = forms.IntegerField(label=_("Probability, %"), min_value=0, max_value=100)
    colour = forms.CharField(
        label=_("Colour"), max_length=7, widget=forms.TextInput(attrs={"type": "color"})
    )
    requires = forms.MultipleChoiceField(
        label=_("Required to enter"),
        choices=Stage.Requirement.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class StageTaskForm(StyledForm, forms.Form):
    """A next step made when a record enters the stage."""

    subject = forms.CharField(label=_("Task"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=Activity.Kind.choices, initial="task")
    due_in_days = forms.IntegerField(label=_("Due after (days)"), min_value=0, max_value=365)
