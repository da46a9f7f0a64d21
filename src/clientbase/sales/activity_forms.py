"""Forms of the activity pages; the services check the business rules."""

from django import forms
from django.utils.translation import gettext_lazy as _

from clientbase.core.forms import StyledForm
from clientbase.sales.models import Activity, ReorderRule


class DateTimeLocalInput(forms.DateTimeInput):
    """The browser's own date-and-time picker."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%dT%H:%M")


def _when(label, *, required: bool = False) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        widget=DateTimeLocalInput(),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )


class ActivityForm(StyledForm, forms.Form):
    """Log what happened or schedule what to do: the quick form of a card and the full form."""

    MODES = [("done", _("Done now")), ("schedule", _("Schedule"))]

    kind = forms.ChoiceField(label=_("Kind"), choices=Activity.Kind.choices, initial="call")
    subject = forms.CharField(label=_("Subject"), max_length=200)
    due_at = _when(_("When"))
    duration_minutes = forms.IntegerField(
        label=_("Duration (minutes)"), required=False, min_value=0, max_value=24 * 60
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"), choices=Activity.Outcome.choices, required=False
    )
    body = forms.CharField(
        label=_("Details"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    remind_at = _when(_("Remind me at"))
    mode = forms.ChoiceField(label=_("Mode"), choices=MODES, initial="done")


class ActivityEditForm(StyledForm, forms.Form):
    """Change an activity: reschedule it, or correct its kind, subject, outcome or reminder."""

    kind = forms.ChoiceField(label=_("Kind"), choices=Activity.Kind.choices)
    subject = forms.CharField(label=_("Subject"), max_length=200)
    due_at = _when(_("When"), required=True)
    duration_minutes = forms.IntegerField(
        label=_("Duration (minutes)"), required=False, min_value=0, max_value=24 * 60
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"), choices=Activity.Outcome.choices, required=False
    )
    body = forms.CharField(
        label=_("Details"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    remind_at = _when(_("Remind me at"))


class RescheduleForm(forms.Form):
    """Move an activity to another time."""

    due_at = _when(_("When"), required=True)


class CompleteForm(forms.Form):
    """Tick an activity done, with what came of it."""

    outcome = forms.ChoiceField(choices=Activity.Outcome.choices, required=False)
    body = forms.CharField(required=False)


class ReorderRuleForm(StyledForm, forms.ModelForm):
    """A rule: remind owners of clients who have not ordered for so many days."""

    class Meta:
        model = ReorderRule
        fields = ["name", "days", "active"]
