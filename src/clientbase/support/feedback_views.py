"""Feedback pages: the customer's one-click rating of a closed ticket (no sign-in), surveys and
their answer page, and the reports of scores per agent and department (SUP-7)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, re_path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django_countries import countries

from clientbase.clients.io import neutralise
from clientbase.clients.io_views import _download
from clientbase.clients.models import Client, ClientGroup
from clientbase.core import clock
from clientbase.core.errors import ServiceError
from clientbase.core.forms import StyledForm, add_service_errors
from clientbase.core.permissions import require_action
from clientbase.core.visibility import visible
from clientbase.support import queries, services
from clientbase.support.mail import ticket_for_rating
from clientbase.support.models import (
    Survey,
    SurveyAnswer,
    SurveyInvitation,
    SurveyQuestion,
    TicketRating,
)

SURVEYS = "support.surveys"
SCORES = (1, 2, 3, 4, 5)
QUESTION_ROWS = 10  # blank question rows a new survey offers; empty ones are ignored
MAX_QUESTIONS = 50
REPORT_DAYS = 90  # the feedback report's default range, back from today
LATEST_COMMENTS = 20
FIRST_YEAR, LAST_YEAR = 1900, 2999
PAGE_SIZE = 50


# --- the customer's rating of a ticket ---------------------------------------------------------


def rate(request: HttpRequest, token: str) -> HttpResponse:
    """The rating page of the closing mail's link: a score from 1 to 5 and a comment, once."""
    ticket = ticket_for_rating(token)
    if ticket is None:
        raise Http404
    rating = TicketRating.objects.filter(ticket=ticket).first()
    error = ""
    chosen = request.POST.get("score", request.GET.get("score", ""))
    comment = request.POST.get("comment", "")
    if request.method == "POST" and rating is None:
        try:
            rating = services.ticket_rate(
                ticket=ticket,
                # ASCII digits only: int() would take "٣" and choke on "²".
                score=int(chosen) if chosen.isascii() and chosen.isdigit() else 0,
                comment=comment,
            )
        except ServiceError as refused:
            error = " ".join(refused.messages)
            rating = TicketRating.objects.filter(ticket=ticket).first()
    elif request.method == "POST":
        error = _("This ticket has already been rated. Thank you!")
    return render(
        request,
        "support/rate.html",
        {
            "ticket": ticket,
            "rating": rating,
            "error": error,
            "chosen": chosen,
            "comment": comment if error else "",
            "scores": SCORES,
        },
        status=400 if error else 200,
    )


# --- the feedback report -----------------------------------------------------------------------


def _date_field(label) -> forms.DateField:
    return forms.DateField(
        label=label,
        required=False,
        widget=forms.DateInput(
            attrs={"type": "date", "class": "form-control-sm"}, format="%Y-%m-%d"
        ),
        error_messages={"invalid": gettext_lazy("Enter a date such as 2024-03-31.")},
    )


def _check_year(day: dt.date | None) -> dt.date | None:
    if day is not None and not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise forms.ValidationError(
            gettext_lazy("Enter a date between the years %(first)s and %(last)s.")
            % {"first": FIRST_YEAR, "last": LAST_YEAR}
        )
    return day


class RangeForm(StyledForm, forms.Form):
    """The days whose ratings a report counts (either end may be open)."""

    since = _date_field(gettext_lazy("From"))
    until = _date_field(gettext_lazy("To"))

    def clean_since(self) -> dt.date | None:
        return _check_year(self.cleaned_data["since"])

    def clean_until(self) -> dt.date | None:
        return _check_year(self.cleaned_data["until"])

    def clean(self) -> dict:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end of the range comes before its start."))
        return data


def _range_form(request: HttpRequest) -> RangeForm:
    today = clock.today()
    defaults = {
        "since": (today - dt.timedelta(days=REPORT_DAYS)).isoformat(),
        "until": today.isoformat(),
    }
    return RangeForm(defaults | request.GET.dict())


@dataclass(frozen=True)
class Spread:
    """One score's share of a row's ratings, as a segment of a small bar (percent)."""

    score: int
    count: int
    start: float
    width: float


def _spread(row: queries.ScoreRow) -> list[Spread]:
    segments, start = [], 0.0
    for score in SCORES:
        count = row.distribution[score]
        width = round(100 * count / row.count, 2) if row.count else 0.0
        segments.append(Spread(score, count, start, width))
        start = round(start + width, 2)
    return segments


def _with_spread(rows: list[queries.ScoreRow]) -> list[tuple[queries.ScoreRow, list[Spread]]]:
    return [(row, _spread(row)) for row in rows]


def _overall_average(rows: list[queries.ScoreRow]) -> Decimal | None:
    """The mean of every rating, from the exact counts, rounded half up to two places."""
    count = sum(row.count for row in rows)
    if not count:
        return None
    points = sum(score * row.distribution[score] for row in rows for score in SCORES)
    return (Decimal(points) / count).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@require_action(SURVEYS)
def feedback(request: HttpRequest) -> HttpResponse:
    """Scores per agent and per department in a date range, the chart and the latest comments."""
    form = _range_form(request)
    context: dict[str, Any] = {"form": form, "export_query": request.GET.urlencode()}
    if form.is_valid():
        dates = {"since": form.cleaned_data["since"], "until": form.cleaned_data["until"]}
        agents = queries.scores_by_agent(request.user, **dates)
        departments = queries.scores_by_department(request.user, **dates)
        ratings = queries.ratings_for(request.user, **dates)
        total = sum(row.count for row in departments)
        context |= {
            "agents": _with_spread(agents),
            "departments": _with_spread(departments),
            "total": total,
            "average": _overall_average(departments),
            "comments": ratings.exclude(comment="")
            .select_related("ticket", "agent", "department")
            .order_by("-rated_at", "-id")[:LATEST_COMMENTS],
            "chart": {
                "labels": [row.name for row in agents],
                "series": [
                    {
                        "label": _("Score %(score)d") % {"score": score},
                        "score": score,
                        "data": [row.distribution[score] for row in agents],
                    }
                    for score in SCORES
                ],
                "averages": [row.average for row in agents],
                "averageLabel": _("Average"),
            },
        }
    return render(
        request, "support/feedback_report.html", context, status=200 if form.is_valid() else 400
    )


@require_action(SURVEYS)
def feedback_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The scores per agent in the date range, as XLSX or CSV."""
    form = _range_form(request)
    if not form.is_valid():
        query = request.GET.urlencode()
        return redirect(reverse("support:feedback") + (f"?{query}" if query else ""))
    since, until = form.cleaned_data["since"], form.cleaned_data["until"]
    agents = queries.scores_by_agent(request.user, since=since, until=until)
    header = [_("Agent"), _("Ratings"), _("Average"), *(str(score) for score in SCORES)]
    name = "feedback-" + "-".join(day.isoformat() for day in (since, until) if day)
    return _download(_agent_cells(agents, header), fmt, filename=name, title=_("Feedback"))


def _agent_cells(agents: list[queries.ScoreRow], header: list[str]) -> Iterator[list[Any]]:
    yield header
    for row in agents:
        yield [
            neutralise(row.name),
            row.count,
            row.average,
            *(row.distribution[score] for score in SCORES),
        ]


# --- surveys: the staff's pages ----------------------------------------------------------------


class SegmentForm(StyledForm, forms.Form):
    """Which clients a survey goes to: those matching every filter that is set."""

    group = forms.ModelChoiceField(
        label=gettext_lazy("Client group"),
        queryset=ClientGroup.objects.order_by("name"),
        required=False,
        empty_label=gettext_lazy("Any"),
    )
    status = forms.ChoiceField(label=gettext_lazy("Client status"), required=False)
    country = forms.ChoiceField(label=gettext_lazy("Country"), required=False)
    language = forms.ChoiceField(label=gettext_lazy("Language"), required=False)
    with_tickets_since = _date_field(gettext_lazy("With tickets since"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        anything = [("", _("Any"))]
        self.fields["status"].choices = anything + list(Client.Status.choices)
        self.fields["country"].choices = anything + list(countries)
        self.fields["language"].choices = anything + list(settings.LANGUAGES)
        self.fields["with_tickets_since"].widget.attrs["class"] = "form-control"
        self.fields["with_tickets_since"].help_text = _(
            "Only clients who opened a ticket on or after this day."
        )

    def clean_with_tickets_since(self) -> dt.date | None:
        return _check_year(self.cleaned_data["with_tickets_since"])

    def segment(self) -> dict:
        """The filters as the survey keeps them."""
        data = self.cleaned_data
        since = data.get("with_tickets_since")
        segment = {
            "group": data["group"].pk if data.get("group") else None,
            "status": data.get("status"),
            "country": data.get("country"),
            "language": data.get("language"),
            "with_tickets_since": since.isoformat() if since else None,
        }
        return {key: value for key, value in segment.items() if value}


class SurveyForm(SegmentForm):
    """A survey's title, introduction and segment."""

    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    intro = forms.CharField(
        label=gettext_lazy("Introduction"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("The first lines of the invitation mail and the answer page."),
    )

    field_order = ["title", "intro"]


class QuestionForm(StyledForm, forms.Form):
    """One question row; a row left blank is ignored."""

    text = forms.CharField(label=gettext_lazy("Question"), required=False, max_length=300)
    # Not required by itself: a blank row may come without one and is ignored.
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"),
        choices=SurveyQuestion.Kind.choices,
        initial="scale",
        required=False,
    )
    choices = forms.CharField(
        label=gettext_lazy("Options, one per line"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    required = forms.BooleanField(label=gettext_lazy("Required"), required=False, initial=True)

    def options(self) -> list[str]:
        """The options written, one per line, blank lines left out."""
        lines = (self.cleaned_data.get("choices") or "").splitlines()
        return [" ".join(line.split()) for line in lines if line.strip()]

    def is_blank(self) -> bool:
        """Whether nothing was written in the row."""
        data = getattr(self, "cleaned_data", {})
        return not data.get("text", "").strip() and not (data.get("choices") or "").strip()

    def clean(self) -> dict:
        data = super().clean()
        if self.is_blank():
            return data
        if not data.get("text", "").strip():
            self.add_error("text", _("Write the question."))
        if not data.get("kind"):
            self.add_error("kind", _("Choose the kind of question."))
        if data.get("kind") == SurveyQuestion.Kind.CHOICE:
            options = self.options()
            if len(options) < 2:
                self.add_error("choices", _("Give at least two options, one per line."))
            elif len(set(options)) < len(options):
                self.add_error("choices", _("Give each option once."))
            elif any(len(option) > 200 for option in options):
                self.add_error("choices", _("Keep each option under 200 characters."))
        return data

    def question(self) -> dict:
        """The row as the survey service takes it."""
        return {
            "text": self.cleaned_data["text"],
            "kind": self.cleaned_data["kind"],
            "choices": self.options(),
            "required": self.cleaned_data["required"],
        }


def _question_formset(data, questions: list[SurveyQuestion]):
    initial = [
        {
            "text": q.text,
            "kind": q.kind,
            "choices": "\n".join(q.choices),
            "required": q.required,
        }
        for q in questions
    ]
    formset_class = forms.formset_factory(
        QuestionForm,
        extra=max(QUESTION_ROWS - len(initial), 3),
        max_num=MAX_QUESTIONS,
        absolute_max=MAX_QUESTIONS,
        validate_max=True,
    )
    return formset_class(data, initial=initial, prefix="q")


def _survey_initial(survey: Survey | None) -> dict:
    if survey is None:
        return {}
    return {"title": survey.title, "intro": survey.intro, **survey.segment}


def _reach(segment: dict, user) -> int:
    return services.survey_clients(Survey(segment=segment), user).count()


def _survey_form_page(request: HttpRequest, survey: Survey | None) -> HttpResponse:
    if survey is not None and survey.status != Survey.Status.DRAFT:
        messages.error(request, _("A survey that was sent cannot be changed."))
        return redirect("support:survey", survey.pk)
    data = request.POST if request.method == "POST" else None
    form = SurveyForm(data, initial=_survey_initial(survey))
    formset = _question_formset(data, list(survey.questions.all()) if survey else [])
    questions_error: list[str] = []
    if data is not None:
        form_ok = form.is_valid()
        rows = [row for row in formset if row.is_valid() and not row.is_blank()]
        if formset.is_valid() and form_ok:
            try:
                saved = services.survey_save(
                    by=request.user,
                    survey=survey,
                    title=form.cleaned_data["title"],
                    intro=form.cleaned_data["intro"],
                    segment=form.segment(),
                    questions=[row.question() for row in rows],
                )
            except ServiceError as refused:
                questions_error = _place_errors(form, rows, refused)
            else:
                messages.success(request, _("Survey saved."))
                return redirect("support:survey", saved.pk)
        elif formset.non_form_errors():
            questions_error = list(formset.non_form_errors())
    segment = form.segment() if form.is_bound and form.is_valid() else _segment_of(survey)
    reach = _reach(segment, request.user)
    return render(
        request,
        "support/survey_form.html",
        {
            "survey": survey,
            "form": form,
            "formset": formset,
            "questions_error": questions_error,
            "reach": reach,
        },
        status=400 if data is not None else 200,
    )


def _segment_of(survey: Survey | None) -> dict:
    return survey.segment if survey is not None else {}


def _place_errors(form: SurveyForm, rows: list[QuestionForm], refused: ServiceError) -> list[str]:
    """Put a service refusal at the question row it names; return what belongs to the list."""
    left: dict[str, list[str]] = {}
    for field, texts in refused.message_dict.items():
        number = field.removeprefix("questions.")
        if number.isdigit() and 1 <= int(number) <= len(rows):
            for text in texts:
                rows[int(number) - 1].add_error("text", text)
        elif field == "questions":
            return list(texts)
        else:
            left[field] = texts
    if left:
        add_service_errors(form, ServiceError(errors=left))
    return []


@require_action(SURVEYS)
def survey_add(request: HttpRequest) -> HttpResponse:
    """Write a new survey as a draft."""
    return _survey_form_page(request, None)


@require_action(SURVEYS)
def survey_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a draft survey: its text, segment and questions."""
    return _survey_form_page(request, get_object_or_404(Survey, pk=pk))


@require_GET
@require_action(SURVEYS)
def survey_reach(request: HttpRequest) -> HttpResponse:
    """How many clients the segment being edited reaches (htmx fragment)."""
    form = SegmentForm(request.GET)
    reach = _reach(form.segment(), request.user) if form.is_valid() else None
    return render(request, "support/survey_reach.html", {"reach": reach, "form": form})


def _surveys_with_counts():
    return (
        Survey.objects.select_related("created_by")
        .annotate(
            invited=Count("invitations"),
            answered=Count("invitations", filter=Q(invitations__answered_at__isnull=False)),
        )
        .order_by("-created_at", "-id")
    )


@require_action(SURVEYS)
def surveys(request: HttpRequest) -> HttpResponse:
    """Every survey, newest first, with how many were invited and answered."""
    page = Paginator(_surveys_with_counts(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "support/survey_list.html", {"page": page})


def _segment_words(segment: dict) -> list[tuple[str, str]]:
    """The survey's filters as people read them."""
    words = []
    if segment.get("group"):
        group = ClientGroup.objects.filter(pk=segment["group"]).first()
        words.append((_("Client group"), group.name if group else "—"))
    if segment.get("status"):
        labels = dict(Client.Status.choices)
        words.append((_("Client status"), str(labels.get(segment["status"], segment["status"]))))
    if segment.get("country"):
        words.append((_("Country"), str(countries.name(segment["country"]) or segment["country"])))
    if segment.get("language"):
        labels = dict(settings.LANGUAGES)
        words.append((_("Language"), labels.get(segment["language"], segment["language"])))
    if segment.get("with_tickets_since"):
        words.append((_("With tickets since"), segment["with_tickets_since"]))
    return words


def _answer_rate(survey: Survey) -> dict:
    counts = survey.invitations.aggregate(
        invited=Count("id"), answered=Count("id", filter=Q(answered_at__isnull=False))
    )
    invited, answered = counts["invited"], counts["answered"]
    return {
        "invited": invited,
        "answered": answered,
        "rate": round(100 * answered / invited, 1) if invited else None,
    }


@require_action(SURVEYS)
def survey_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A survey: its questions, who it goes to, and what can be done with it next."""
    survey = get_object_or_404(Survey.objects.select_related("created_by"), pk=pk)
    return render(
        request,
        "support/survey_detail.html",
        {
            "survey": survey,
            "questions": survey.questions.all(),
            "segment": _segment_words(survey.segment),
            "reach": _reach(survey.segment, request.user)
            if survey.status == Survey.Status.DRAFT
            else None,
            "counts": _answer_rate(survey),
        },
    )


@require_POST
@require_action(SURVEYS)
def survey_send(request: HttpRequest, pk: int) -> HttpResponse:
    """Invite the segment's clients; the mails go out in the background."""
    survey = get_object_or_404(Survey, pk=pk)
    try:
        invited = services.survey_send(by=request.user, survey=survey)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Survey sent: %(count)d clients invited.") % {"count": invited})
    return redirect("support:survey", survey.pk)


@require_POST
@require_action(SURVEYS)
def survey_close(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop taking answers."""
    survey = get_object_or_404(Survey, pk=pk)
    try:
        services.survey_close(by=request.user, survey=survey)
    except ServiceError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Survey closed: it takes no more answers."))
    return redirect("support:survey", survey.pk)


@dataclass(frozen=True)
class Bar:
    """One option's or score's count, with its share of the question's answers (percent)."""

    label: str
    count: int
    share: float


@require_action(SURVEYS)
def survey_results(request: HttpRequest, pk: int) -> HttpResponse:
    """Each question's answers counted, the averages, the free texts and the answer rate."""
    survey = get_object_or_404(Survey, pk=pk)
    results = [
        (
            result,
            [
                Bar(label, count, round(100 * count / result.answered, 1) if result.answered else 0)
                for label, count in result.counts
            ],
        )
        for result in queries.survey_results(survey, request.user)
    ]
    return render(
        request,
        "support/survey_results.html",
        {"survey": survey, "results": results, "counts": _answer_rate(survey)},
    )


@require_action(SURVEYS)
def survey_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    """Every answer of the clients the user may see, one row per client, as XLSX or CSV."""
    survey = get_object_or_404(Survey, pk=pk)
    questions = list(survey.questions.all())
    header = [_("Client number"), _("Client"), _("Answered"), *(q.text for q in questions)]
    invitations = (
        visible(SurveyInvitation.objects.filter(survey=survey), request.user)
        .exclude(answered_at=None)
        .select_related("client")
        .order_by("answered_at", "id")
    )
    return _download(
        _answer_cells(invitations, questions, header),
        fmt,
        filename=f"survey-{survey.pk}",
        title=_("Answers"),
    )


def _answer_cells(invitations, questions: list[SurveyQuestion], header) -> Iterator[list[Any]]:
    yield [neutralise(str(cell)) for cell in header]
    for chunk in _chunks(invitations, 500):
        answers: dict[tuple[int, int], SurveyAnswer] = {
            (a.invitation_id, a.question_id): a
            for a in SurveyAnswer.objects.filter(invitation__in=[i.pk for i in chunk])
        }
        for invitation in chunk:
            cells = [neutralise(invitation.client.number), neutralise(invitation.client.name)]
            cells.append(invitation.answered_at.isoformat(timespec="seconds"))
            for question in questions:
                answer = answers.get((invitation.pk, question.pk))
                if answer is None:
                    cells.append("")
                elif question.kind == SurveyQuestion.Kind.SCALE:
                    cells.append(answer.score)
                else:
                    cells.append(neutralise(answer.choice or answer.text))
            yield cells


def _chunks(queryset, size: int) -> Iterator[list]:
    chunk = []
    for item in queryset.iterator(chunk_size=size):
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- surveys: the client's answer page (no sign-in) -------------------------------------------


def survey_answer(request: HttpRequest, token: str) -> HttpResponse:
    """A client answers their survey through their own link, once."""
    invitation = (
        SurveyInvitation.objects.select_related("survey", "client").filter(token=token).first()
    )
    if invitation is None or not token:
        raise Http404
    survey = invitation.survey
    values: dict[int, str] = {}
    errors: dict[str, list[str]] = {}
    error = ""
    if request.method == "POST":
        questions = list(survey.questions.all())
        values = {q.pk: request.POST.get(f"q{q.pk}", "")[:4000] for q in questions}
        try:
            invitation = services.survey_answer(invitation=invitation, answers=values)
        except ServiceError as refused:
            errors = {k: v for k, v in refused.message_dict.items() if k != "__all__"}
            error = " ".join(refused.message_dict.get("__all__", []))
            if errors and not error:
                error = _("Some answers need another look: see the messages at the questions.")
            invitation.refresh_from_db(fields=["answered_at"])
    rows = [
        {
            "question": question,
            "value": values.get(question.pk, ""),
            "errors": errors.get(f"q{question.pk}", []),
        }
        for question in survey.questions.all()
    ]
    return render(
        request,
        "support/survey_answer.html",
        {
            "invitation": invitation,
            "survey": survey,
            "rows": rows,
            "error": error,
            "scores": [str(score) for score in SCORES],
            "answered": invitation.answered_at is not None,
            "closed": survey.status != Survey.Status.SENT,
        },
        status=400 if error else 200,
    )


urlpatterns = [
    path("rate/<str:token>/", rate, name="rate"),
    path("feedback/", feedback, name="feedback"),
    re_path(
        r"^feedback/export\.(?P<fmt>csv|xlsx)$",
        feedback_export,
        name="feedback_export",
    ),
    path("surveys/", surveys, name="surveys"),
    path("surveys/add/", survey_add, name="survey_add"),
    path("surveys/reach/", survey_reach, name="survey_reach"),
    path("surveys/<int:pk>/", survey_detail, name="survey"),
    path("surveys/<int:pk>/edit/", survey_edit, name="survey_edit"),
    path("surveys/<int:pk>/send/", survey_send, name="survey_send"),
    path("surveys/<int:pk>/close/", survey_close, name="survey_close"),
    path("surveys/<int:pk>/results/", survey_results, name="survey_results"),
    re_path(
        r"^surveys/(?P<pk>[0-9]{1,18})/answers\.(?P<fmt>csv|xlsx)$",
        survey_export,
        name="survey_export",
    ),
    path("survey/<str:token>/", survey_answer, name="survey_answer"),
]
