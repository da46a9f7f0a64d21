"""Forms of the KPI pages: the report's period and subject, and a target."""

import datetime as dt

from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clientbase.core.forms import StyledForm
from clientbase.core.money import Money
from clientbase.sales.kpi_queries import Period, people_in_sight, teams_in_sight
from clientbase.sales.models import KpiTarget

FIRST_YEAR, LAST_YEAR = 2000, 2100


def _date_field(label) -> forms.DateField:
    return forms.DateField(
        label=label,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": gettext_lazy("Enter a date such as 2025-03-31.")},
    )


def _in_range(day: dt.date | None) -> dt.date | None:
    if day is not None and not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise forms.ValidationError(
            gettext_lazy("Enter a date between the years %(first)s and %(last)s.")
            % {"first": FIRST_YEAR, "last": LAST_YEAR}
        )
    return day


def subject_choices(viewer, *, others: bool) -> list[tuple[str, list[tuple[str, str]]]]:
    """People and teams in the viewer's sight as `u<id>` / `t<id>` choices (only self if not
    `others`)."""
    if not others:
        return [(_("People"), [(f"u{viewer.pk}", viewer.display_name)])]
    people = [(f"u{p.pk}", p.display_name) for p in people_in_sight(viewer)]
    # Non-breaking spaces: a select keeps them, so the tree shows as indentation.
    teams = [(f"t{u.pk}", "\u00a0\u00a0" * u.depth + u.name) for u in teams_in_sight(viewer)]
    groups = [(_("People"), people)]
    if teams:
        groups.append((_("Teams"), teams))
    return groups


class PeriodForm(StyledForm, forms.Form):
    """The first and last day of a period, in order."""

    start = _date_field(gettext_lazy("From"))
    end = _date_field(gettext_lazy("To"))

    def clean_start(self) -> dt.date:
        return _in_range(self.cleaned_data["start"])

    def clean_end(self) -> dt.date:
        return _in_range(self.cleaned_data["end"])

    def clean(self) -> dict:
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", _("The period ends before it starts."))
        return data

    @property
    def period(self) -> Period:
        return Period(self.cleaned_data["start"], self.cleaned_data["end"])


class ReportForm(PeriodForm):
    """Whose KPI to read, and for which days."""

    field_order = ["who", "start", "end"]
    who = forms.ChoiceField(label=gettext_lazy("Person or team"))

    def __init__(self, *args, viewer, others: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["who"].choices = subject_choices(viewer, others=others)


class TargetForm(StyledForm, forms.Form):
    """A target: for whom, what, when, how much and the commission it earns."""

    who = forms.ChoiceField(label=gettext_lazy("Person or team"))
    metric = forms.ChoiceField(label=gettext_lazy("Measure"), choices=KpiTarget.Metric.choices)
    period_start = _date_field(gettext_lazy("From"))
    period_end = _date_field(gettext_lazy("To"))
    value = forms.DecimalField(
        label=gettext_lazy("Target"),
        min_value=0,
        max_digits=18,
        decimal_places=3,
        help_text=gettext_lazy("A number, or for revenue an amount such as 15000.00."),
    )
    currency = forms.CharField(
        label=gettext_lazy("Currency"),
        max_length=3,
        required=False,
        help_text=gettext_lazy("For revenue only."),
    )
    commission_percent = forms.DecimalField(
        label=gettext_lazy("Commission, %"),
        min_value=0,
        max_value=100,
        max_digits=5,
        decimal_places=2,
        required=False,
        help_text=gettext_lazy("Paid on revenue; set it on the revenue target."),
    )

    def __init__(self, *args, viewer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["who"].choices = subject_choices(viewer, others=True)
        self.fields["currency"].initial = settings.DEFAULT_CURRENCY

    def clean_period_start(self) -> dt.date:
        return _in_range(self.cleaned_data["period_start"])

    def clean_period_end(self) -> dt.date:
        return _in_range(self.cleaned_data["period_end"])


def target_initial(target: KpiTarget) -> dict:
    """A saved target as the form shows it: revenue back in major units."""
    is_money = target.metric == KpiTarget.Metric.REVENUE
    return {
        "who": f"u{target.user_id}" if target.user_id else f"t{target.org_unit_id}",
        "metric": target.metric,
        "period_start": target.period_start,
        "period_end": target.period_end,
        "value": Money(target.target, target.currency).amount if is_money else target.target,
        "currency": target.currency or settings.DEFAULT_CURRENCY,
        "commission_percent": target.commission_percent,
    }
