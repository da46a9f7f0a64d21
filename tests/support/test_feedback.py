"""Feedback (SUP-7): the customer's rating link, the score report and its export, surveys from
draft to results, and the client's answer page."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
import time_machine
from django.core import signing
from django.urls import reverse

from clientbase.clients.models import ClientGroup
from clientbase.clients.services import client_create
from clientbase.support import services
from clientbase.support.mail import RATING_SALT, rating_token, send_survey_invitations
from clientbase.support.models import (
    Survey,
    SurveyAnswer,
    SurveyInvitation,
    SurveyQuestion,
    TicketRating,
)

pytestmark = pytest.mark.django_db

DAY = dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.UTC)


def _closed_ticket(*, by, department, client, subject="Почта не работает"):
    ticket = services.ticket_open(
        by=by, department=department, subject=subject, body="Помогите.", client=client
    )
    return services.ticket_close(by=by, ticket=ticket, notify=False)


@pytest.fixture
def rated(agent, make_user, support_desk, customer):
    """Sasha's tickets rated 5 and 4 (technical) and 2 (billing), Petr's rated 1 (billing)."""
    petr = make_user("petr", role="support", unit="company", first_name="Petr", last_name="Orlov")
    tech, billing = support_desk["technical"], support_desk["billing"]
    plan = [
        (agent, tech, 5, "Быстро и по делу"),
        (agent, tech, 4, ""),
        (agent, billing, 2, "Долго ждал"),
        (petr, billing, 1, "Никто не ответил"),
    ]
    with time_machine.travel(DAY, tick=False):
        for number, (who, department, score, comment) in enumerate(plan):
            ticket = _closed_ticket(
                by=who, department=department, client=customer, subject=f"Вопрос {number}"
            )
            services.ticket_rate(ticket=ticket, score=score, comment=comment)
    # One more, long before the range the report is asked for.
    with time_machine.travel(DAY - dt.timedelta(days=200), tick=False):
        old = _closed_ticket(by=agent, department=tech, client=customer, subject="Старый")
        services.ticket_rate(ticket=old, score=1)
    return {"petr": petr}


RANGE = {"since": "2026-11-01", "until": "2026-11-30"}


# --- the rating link ---------------------------------------------------------------------------


@pytest.fixture
def closed(agent, support_desk, customer):
    """A ticket the agent closed; the customer holds its rating link."""
    return _closed_ticket(by=agent, department=support_desk["technical"], client=customer)


def test_rating_link_opens_without_sign_in_and_keeps_score_and_comment(client, closed, agent):
    # Given the link of the closing mail
    url = reverse("support:rate", args=[rating_token(closed)])

    # When the customer opens it and picks 4 with a comment
    page = client.get(url)
    answered = client.post(url, {"score": "4", "comment": "  Спасибо, всё работает.  "})

    # Then the score, the comment, the agent and the department are kept
    assert page.status_code == 200
    assert b'id="rating-form"' in page.content
    assert answered.status_code == 200
    assert "You rated this ticket 4 of 5." in answered.content.decode()
    rating = TicketRating.objects.get()
    assert (rating.ticket, rating.score, rating.comment) == (closed, 4, "Спасибо, всё работает.")
    assert (rating.agent, rating.department.name) == (agent, "Technical support")


def test_a_second_rating_is_refused_and_the_first_kept(client, closed):
    # Given a ticket already rated 5
    url = reverse("support:rate", args=[rating_token(closed)])
    client.post(url, {"score": "5", "comment": "Отлично"})

    # When the link is used again with another score
    again = client.post(url, {"score": "1", "comment": "Передумал"})

    # Then it is refused with a message, and the first rating stands
    assert again.status_code == 400
    assert "This ticket has already been rated." in again.content.decode()
    assert list(TicketRating.objects.values_list("score", "comment")) == [(5, "Отлично")]


@pytest.mark.parametrize("score", ["0", "6", "", "abc", "²", "٣", "45"])
def test_a_score_out_of_range_is_refused_and_the_comment_kept(client, closed, score):
    # When the customer sends a score that is not 1 to 5
    url = reverse("support:rate", args=[rating_token(closed)])
    response = client.post(url, {"score": score, "comment": "Мой отзыв"})

    # Then nothing is saved, the message says why and the comment is still in the form
    assert response.status_code == 400
    content = response.content.decode()
    assert "Choose a score from 1 to 5." in content
    assert ">Мой отзыв</textarea>" in content
    assert TicketRating.objects.count() == 0


def test_a_forged_or_expired_rating_link_is_a_404(client, closed):
    genuine = rating_token(closed)
    forged_key = signing.dumps({"ticket": closed.pk, "key": "xxxxxxxx"}, salt=RATING_SALT)
    tampered = genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB")

    # A forged signature, a signed token with the wrong key, and junk are all unknown
    for token in (tampered, forged_key, "nothing"):
        assert client.get(reverse("support:rate", args=[token])).status_code == 404
        assert client.post(reverse("support:rate", args=[token]), {"score": "5"}).status_code == 404

    # And a genuine link stops working after 90 days
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(days=91)):
        expired = client.post(reverse("support:rate", args=[genuine]), {"score": "5"})
    assert expired.status_code == 404
    assert TicketRating.objects.count() == 0


# --- the feedback report -----------------------------------------------------------------------


def test_report_shows_scores_per_agent_and_department_for_the_range(signed_in, agent, rated):
    # When the report is asked for November
    response = signed_in(agent).get(reverse("support:feedback"), RANGE)

    # Then each agent's and department's count, average and spread are exact
    assert response.status_code == 200
    agents = [
        (row.name, row.count, row.average, row.distribution)
        for row, _ in response.context["agents"]
    ]
    assert agents == [
        ("Sasha Ivanova", 3, 3.67, {1: 0, 2: 1, 3: 0, 4: 1, 5: 1}),
        ("Petr Orlov", 1, 1.0, {1: 1, 2: 0, 3: 0, 4: 0, 5: 0}),
    ]
    departments = [(row.name, row.count, row.average) for row, _ in response.context["departments"]]
    assert departments == [("Technical support", 2, 4.5), ("Billing questions", 2, 1.5)]
    assert (response.context["total"], response.context["average"]) == (4, Decimal("3.00"))
    # and the spread bar of Sasha has thirds for 2, 4 and 5
    sasha_spread = response.context["agents"][0][1]
    assert [(s.score, s.count, s.start, s.width) for s in sasha_spread] == [
        (1, 0, 0.0, 0.0),
        (2, 1, 0.0, 33.33),
        (3, 0, 33.33, 0.0),
        (4, 1, 33.33, 33.33),
        (5, 1, 66.66, 33.33),
    ]
    # and the chart data is in a JSON element for the static script
    chart = response.context["chart"]
    assert chart["labels"] == ["Sasha Ivanova", "Petr Orlov"]
    assert [s["data"] for s in chart["series"]] == [[0, 1], [1, 0], [0, 0], [1, 0], [1, 0]]
    content = response.content.decode()
    assert 'id="feedback-chart-data" type="application/json"' in content
    assert "support/feedback.js" in content
    # and the latest comments name their tickets, newest first
    comments = [(r.score, r.comment) for r in response.context["comments"]]
    assert comments == [
        (1, "Никто не ответил"),
        (2, "Долго ждал"),
        (5, "Быстро и по делу"),
    ]


def test_report_range_leaves_out_older_ratings_and_refuses_a_reversed_range(
    signed_in, agent, rated
):
    browser = signed_in(agent)

    # The whole year counts the old rating of 1 too
    year = browser.get(reverse("support:feedback"), {"since": "2026-01-01", "until": "2026-12-31"})
    assert [(r.name, r.count, r.average) for r, _ in year.context["agents"]] == [
        ("Sasha Ivanova", 4, 3.0),
        ("Petr Orlov", 1, 1.0),
    ]

    # A range that ends before it starts is refused at its field
    reversed_range = browser.get(
        reverse("support:feedback"), {"since": "2026-12-01", "until": "2026-11-01"}
    )
    assert reversed_range.status_code == 400
    assert reversed_range.context["form"].errors == {
        "until": ["The end of the range comes before its start."]
    }
    assert "agents" not in reversed_range.context


def test_report_without_ratings_says_so(signed_in, agent, support_desk):
    response = signed_in(agent).get(reverse("support:feedback"), RANGE)

    assert response.status_code == 200
    assert response.context["total"] == 0
    assert "No rating in this range." in response.content.decode()
    assert "feedback-chart-data" not in response.content.decode()


def test_xlsx_export_holds_the_agent_rows(signed_in, agent, rated):
    # When the per-agent table is exported for November
    response = signed_in(agent).get(reverse("support:feedback_export", args=["xlsx"]), RANGE)

    # Then the workbook opens and holds the same figures
    assert response.status_code == 200
    assert "feedback-2026-11-01-2026-11-30.xlsx" in response["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    rows = list(book.active.iter_rows(values_only=True))
    assert rows == [
        ("Agent", "Ratings", "Average", "1", "2", "3", "4", "5"),
        ("Sasha Ivanova", 3, 3.67, 0, 1, 0, 1, 1),
        ("Petr Orlov", 1, 1, 1, 0, 0, 0, 0),
    ]


def test_export_with_a_bad_range_goes_back_to_the_report(signed_in, agent, rated):
    response = signed_in(agent).get(
        reverse("support:feedback_export", args=["xlsx"]), {"since": "yesterday"}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("support:feedback") + "?since=yesterday"


def test_feedback_and_survey_pages_are_403_without_the_surveys_permission(
    signed_in, make_user, rated
):
    # Given a sales user: tickets yes, surveys and feedback no
    seller = make_user("olga", role="sales", unit="team_a")
    survey = services.survey_save(
        by=seller, title="NPS", questions=[{"text": "Оценка", "kind": "scale"}]
    )
    browser = signed_in(seller)

    # Then every feedback and survey page is refused
    for url in (
        reverse("support:feedback"),
        reverse("support:feedback_export", args=["xlsx"]),
        reverse("support:surveys"),
        reverse("support:survey_add"),
        reverse("support:survey_reach"),
        reverse("support:survey", args=[survey.pk]),
        reverse("support:survey_edit", args=[survey.pk]),
        reverse("support:survey_results", args=[survey.pk]),
        reverse("support:survey_export", args=[survey.pk, "xlsx"]),
    ):
        assert browser.get(url).status_code == 403, url
    assert browser.post(reverse("support:survey_send", args=[survey.pk])).status_code == 403
    survey.refresh_from_db()
    assert (survey.status, survey.invitations.count()) == ("draft", 0)


# --- surveys: writing and sending --------------------------------------------------------------


def _survey_post(title="Удовлетворённость", rows=(), **segment):
    data = {
        "title": title,
        "intro": "Ответьте на пару вопросов.",
        "q-TOTAL_FORMS": "10",
        "q-INITIAL_FORMS": "0",
        "q-MIN_NUM_FORMS": "0",
        "q-MAX_NUM_FORMS": "50",
        **segment,
    }
    for index in range(10):
        # What a browser sends for a row left blank: the preset kind and the ticked box
        data |= {f"q-{index}-kind": "scale", f"q-{index}-required": "on"}
    for index, row in enumerate(rows):
        data |= {f"q-{index}-{key}": value for key, value in row.items()}
        if not row.get("required", True):
            del data[f"q-{index}-required"]
    return data


QUESTIONS = [
    {"text": "Как вы нас нашли?", "kind": "choice", "choices": "Поиск\nДрузья\n\nРеклама"},
    {"text": "Оцените поддержку", "kind": "scale"},
    {"text": "Что улучшить?", "kind": "text", "required": False},
]


def test_survey_is_created_with_its_questions_and_segment(signed_in, agent, customer):
    group = ClientGroup.objects.create(name="Опт")

    # When a survey is written with three questions in rows 1, 2 and 4
    rows = [QUESTIONS[0], QUESTIONS[1], {"text": ""}, QUESTIONS[2]]
    response = signed_in(agent).post(
        reverse("support:survey_add"),
        _survey_post(rows=rows, country="RU", language="ru", group=str(group.pk)),
    )

    # Then it is a draft with those questions, the blank row ignored
    survey = Survey.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("support:survey", args=[survey.pk])
    assert (survey.title, survey.status, survey.created_by) == ("Удовлетворённость", "draft", agent)
    assert survey.segment == {"group": group.pk, "country": "RU", "language": "ru"}
    assert list(
        survey.questions.values_list("position", "kind", "text", "choices", "required")
    ) == [
        (1, "choice", "Как вы нас нашли?", ["Поиск", "Друзья", "Реклама"], True),
        (2, "scale", "Оцените поддержку", [], True),
        (3, "text", "Что улучшить?", [], False),
    ]


def test_survey_without_questions_is_refused_and_nothing_saved(signed_in, agent):
    response = signed_in(agent).post(reverse("support:survey_add"), _survey_post(rows=[]))

    assert response.status_code == 400
    assert response.context["questions_error"] == ["Add at least one question."]
    assert 'id="questions-error"' in response.content.decode()
    assert Survey.objects.count() == 0


def test_choice_with_one_option_is_refused_at_its_row(signed_in, agent):
    rows = [QUESTIONS[1], {"text": "Какой тариф?", "kind": "choice", "choices": "Базовый\n \n"}]
    response = signed_in(agent).post(reverse("support:survey_add"), _survey_post(rows=rows))

    assert response.status_code == 400
    formset = response.context["formset"]
    assert formset.forms[0].errors == {}
    assert formset.forms[1].errors == {"choices": ["Give at least two options, one per line."]}
    assert (Survey.objects.count(), SurveyQuestion.objects.count()) == (0, 0)


def test_bad_title_options_and_text_are_refused_at_their_fields(signed_in, agent):
    rows = [
        {"text": "", "kind": "choice", "choices": "Да\nНет"},
        {"text": "Повтор?", "kind": "choice", "choices": "Да\nДа"},
        {"text": "Длинно?", "kind": "choice", "choices": "Да\n" + "x" * 201},
        {"text": "Без вида", "kind": ""},
    ]
    response = signed_in(agent).post(
        reverse("support:survey_add"), _survey_post(title=" ", rows=rows, country="XX")
    )

    assert response.status_code == 400
    form, formset = response.context["form"], response.context["formset"]
    assert form.errors["title"] == ["This field is required."]
    assert list(form.errors) == ["title", "country"]
    assert [f.errors for f in formset.forms[:4]] == [
        {"text": ["Write the question."]},
        {"choices": ["Give each option once."]},
        {"choices": ["Keep each option under 200 characters."]},
        {"kind": ["Choose the kind of question."]},
    ]
    assert Survey.objects.count() == 0


def test_a_draft_is_edited_and_a_sent_survey_cannot_be(signed_in, agent, customer):
    survey = services.survey_save(
        by=agent, title="Старое", questions=[{"text": "Вопрос", "kind": "text"}]
    )
    browser = signed_in(agent)

    # The edit page offers the question and blank rows
    page = browser.get(reverse("support:survey_edit", args=[survey.pk]))
    assert page.status_code == 200
    assert page.context["formset"].total_form_count() == 10
    assert page.context["formset"].forms[0].initial["text"] == "Вопрос"

    # Saving replaces the questions
    data = _survey_post(title="Новое", rows=[QUESTIONS[1]])
    data["q-INITIAL_FORMS"] = "1"
    assert browser.post(reverse("support:survey_edit", args=[survey.pk]), data).status_code == 302
    survey.refresh_from_db()
    assert survey.title == "Новое"
    assert list(survey.questions.values_list("kind", "text")) == [("scale", "Оцените поддержку")]

    # Once sent, the edit page sends the user back with a message and changes nothing
    services.survey_send(by=agent, survey=survey)
    refused = browser.post(reverse("support:survey_edit", args=[survey.pk]), data | {"title": "X"})
    assert refused.status_code == 302
    survey.refresh_from_db()
    assert survey.title == "Новое"


@pytest.fixture
def clients_by_country(make_user, customer):
    """Two clients in Russia (ВМС-ГРУПП, Альфа), one in France, one in Russia with no email."""
    seller = make_user("seller2", role="sales", unit="team_a")
    alfa = client_create(by=seller, name="Альфа", email="info@alfa.ru", country="RU", language="ru")
    client_create(by=seller, name="Lumière", email="bonjour@lumiere.fr", country="FR")
    return {"ru": [customer, alfa]}


def test_reach_counts_the_segment_before_sending(signed_in, agent, clients_by_country):
    browser = signed_in(agent)

    fragment = browser.get(reverse("support:survey_reach"), {"country": "RU"})
    everyone = browser.get(reverse("support:survey_reach"))
    bad = browser.get(reverse("support:survey_reach"), {"with_tickets_since": "soon"})

    assert "This segment reaches 2 clients." in fragment.content.decode()
    assert "This segment reaches 3 clients." in everyone.content.decode()
    assert "one of them is not valid" in bad.content.decode()


def test_sending_invites_exactly_the_segment_and_mails_each_once(
    signed_in, agent, clients_by_country, outbox, django_capture_on_commit_callbacks
):
    # Given a draft for clients in Russia
    survey = services.survey_save(
        by=agent,
        title="Как мы работаем?",
        intro="Нам важно ваше мнение.",
        segment={"country": "RU"},
        questions=[{"text": "Оцените нас", "kind": "scale"}],
    )
    browser = signed_in(agent)
    detail = browser.get(reverse("support:survey", args=[survey.pk]))
    assert detail.context["reach"] == 2
    assert "Send to 2 clients" in detail.content.decode()

    # When it is sent
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(reverse("support:survey_send", args=[survey.pk]))

    # Then the two Russian clients are invited and mailed their own link, once
    assert response.status_code == 302
    survey.refresh_from_db()
    assert survey.status == "sent"
    invited = SurveyInvitation.objects.filter(survey=survey).select_related("client")
    assert sorted(i.client.name for i in invited) == ["Альфа", 'ООО "ВМС-ГРУПП"']
    assert sorted(m.to[0] for m in outbox) == ["info@alfa.ru", "ivan@vms-group.ru"]
    for invitation in invited:
        (mail,) = [m for m in outbox if m.to == [invitation.client.email]]
        assert mail.subject == "Как мы работаем?"
        assert reverse("support:survey_answer", args=[invitation.token]) in mail.body
        assert invitation.sent_at is not None
    # and sending again, or running the mail task again, changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        again = browser.post(reverse("support:survey_send", args=[survey.pk]), follow=True)
    assert "This survey was sent already." in again.content.decode()
    assert send_survey_invitations(survey.pk) == 0
    assert (len(outbox), invited.count()) == (2, 2)


# --- surveys: answers and results --------------------------------------------------------------


@pytest.fixture
def sent_survey(agent, clients_by_country):
    """A survey of three questions sent to the two Russian clients."""
    survey = services.survey_save(
        by=agent,
        title="Как мы работаем?",
        segment={"country": "RU"},
        questions=[
            {"text": "Как вы нас нашли?", "kind": "choice", "choices": ["Поиск", "Друзья"]},
            {"text": "Оцените поддержку", "kind": "scale"},
            {"text": "Что улучшить?", "kind": "text", "required": False},
        ],
    )
    services.survey_send(by=agent, survey=survey)
    questions = list(survey.questions.all())
    invitations = {
        i.client.name: i
        for i in SurveyInvitation.objects.filter(survey=survey).select_related("client")
    }
    return {"survey": survey, "questions": questions, "invitations": invitations}


def _answers(sent, choice="", score="", text=""):
    found, scored, free = sent["questions"]
    return {f"q{found.pk}": choice, f"q{scored.pk}": score, f"q{free.pk}": text}


def test_client_answers_once_and_results_are_counted(client, signed_in, agent, sent_survey):
    first = sent_survey["invitations"]['ООО "ВМС-ГРУПП"']
    second = sent_survey["invitations"]["Альфа"]
    url = reverse("support:survey_answer", args=[first.token])

    # The answer page opens without sign-in
    page = client.get(url)
    assert page.status_code == 200
    assert 'id="survey-answer-form"' in page.content.decode()

    # When both clients answer
    done = client.post(url, _answers(sent_survey, "Друзья", "5", "Отвечайте быстрее"))
    client.post(
        reverse("support:survey_answer", args=[second.token]),
        _answers(sent_survey, "Друзья", "2"),
    )

    # Then the answers are kept
    assert done.status_code == 200
    assert "Thank you! Your answers have been received." in done.content.decode()
    assert SurveyAnswer.objects.filter(invitation=first).count() == 3
    assert SurveyAnswer.objects.filter(invitation=second).count() == 2

    # And a second answer is refused and changes nothing
    again = client.post(url, _answers(sent_survey, "Поиск", "1", "Передумал"))
    assert again.status_code == 400
    assert "This survey has already been answered." in again.content.decode()
    assert SurveyAnswer.objects.count() == 5

    # And the results count them exactly, with the answer rate
    results = signed_in(agent).get(
        reverse("support:survey_results", args=[sent_survey["survey"].pk])
    )
    assert results.status_code == 200
    summary = [
        (r.answered, r.counts, r.average, r.texts, [b.share for b in bars])
        for r, bars in results.context["results"]
    ]
    assert summary == [
        (2, [("Поиск", 0), ("Друзья", 2)], None, [], [0, 100.0]),
        (2, [("1", 0), ("2", 1), ("3", 0), ("4", 0), ("5", 1)], 3.5, [], [0, 50.0, 0, 0, 50.0]),
        (1, [], None, ["Отвечайте быстрее"], []),
    ]
    assert results.context["counts"] == {"invited": 2, "answered": 2, "rate": 100.0}


def test_required_and_invalid_answers_are_refused_at_their_questions(client, sent_survey):
    invitation = sent_survey["invitations"]["Альфа"]
    found, scored, _free = sent_survey["questions"]

    # When a required question is skipped and the choice is not one of the options
    response = client.post(
        reverse("support:survey_answer", args=[invitation.token]),
        _answers(sent_survey, "Телевизор", "", "Текст"),
    )

    # Then each message stands at its question, the typed text stays, and nothing is saved
    assert response.status_code == 400
    rows = {row["question"].pk: row for row in response.context["rows"]}
    assert rows[found.pk]["errors"] == ["Choose one of the options."]
    assert rows[scored.pk]["errors"] == ["Please answer this question."]
    assert rows[_free.pk]["value"] == "Текст"
    assert ">Текст</textarea>" in response.content.decode()
    invitation.refresh_from_db()
    assert (invitation.answered_at, SurveyAnswer.objects.count()) == (None, 0)

    # And a score out of 1..5 is refused too
    out_of_range = client.post(
        reverse("support:survey_answer", args=[invitation.token]),
        _answers(sent_survey, "Поиск", "7"),
    )
    assert out_of_range.status_code == 400
    assert out_of_range.context["rows"][1]["errors"] == ["Choose a score from 1 to 5."]
    assert SurveyAnswer.objects.count() == 0


def test_a_closed_survey_says_so_and_an_unknown_token_is_a_404(
    client, signed_in, agent, sent_survey
):
    invitation = sent_survey["invitations"]["Альфа"]
    survey = sent_survey["survey"]

    # When the survey is closed from its page
    closed = signed_in(agent).post(reverse("support:survey_close", args=[survey.pk]))
    assert closed.status_code == 302
    survey.refresh_from_db()
    assert survey.status == "closed"

    # Then the link says so and takes no answer
    client.logout()
    url = reverse("support:survey_answer", args=[invitation.token])
    page = client.get(url)
    assert page.status_code == 200
    assert "This survey is closed" in page.content.decode()
    posted = client.post(url, _answers(sent_survey, "Поиск", "5"))
    assert posted.status_code == 400
    assert "This survey no longer takes answers." in posted.content.decode()
    assert SurveyAnswer.objects.count() == 0

    # And a token nobody was given is unknown
    assert client.get(reverse("support:survey_answer", args=["no-such-token"])).status_code == 404


def test_only_a_sent_survey_can_be_closed(signed_in, agent):
    draft = services.survey_save(
        by=agent, title="Черновик", questions=[{"text": "Оценка", "kind": "scale"}]
    )

    response = signed_in(agent).post(reverse("support:survey_close", args=[draft.pk]), follow=True)

    assert "Only a survey that was sent can be closed." in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_survey_list_and_answers_export(signed_in, agent, sent_survey, django_assert_num_queries):
    first = sent_survey["invitations"]['ООО "ВМС-ГРУПП"']
    services.survey_answer(
        invitation=first,
        answers={
            q.pk: v for q, v in zip(sent_survey["questions"], ["Поиск", "4", "=1+1"], strict=True)
        },
    )
    services.survey_save(by=agent, title="Черновик", questions=[{"text": "?", "kind": "text"}])
    browser = signed_in(agent)

    # The list shows each survey with its invited and answered counts, in a fixed few queries
    with django_assert_num_queries(6):
        listing = browser.get(reverse("support:surveys"))
    rows = [(s.title, s.status, s.invited, s.answered) for s in listing.context["page"]]
    assert rows == [("Черновик", "draft", 0, 0), ("Как мы работаем?", "sent", 2, 1)]

    # The export has one row per answering client, formulas made inert
    export = browser.get(reverse("support:survey_export", args=[sent_survey["survey"].pk, "xlsx"]))
    book = openpyxl.load_workbook(io.BytesIO(b"".join(export.streaming_content)))
    cells = list(book.active.iter_rows(values_only=True))
    assert cells[0] == (
        "Client number",
        "Client",
        "Answered",
        "Как вы нас нашли?",
        "Оцените поддержку",
        "Что улучшить?",
    )
    assert cells[1][1:2] + cells[1][3:] == ('ООО "ВМС-ГРУПП"', "Поиск", 4, "'=1+1")
    assert len(cells) == 2


def test_a_survey_reaches_only_the_clients_its_sender_may_see(
    make_user, clients_by_country, django_capture_on_commit_callbacks
):
    # Given the Russian clients belong to team A, and a manager of team B
    other_team = make_user("boris", role="manager", unit="team_b")
    own_team = make_user("anna", role="manager", unit="team_a")
    survey = services.survey_save(
        by=other_team,
        title="Как мы работаем?",
        segment={"country": "RU"},
        questions=[{"text": "Оцените нас", "kind": "scale"}],
    )

    # Then the segment reaches nobody for team B's manager, both clients for team A's
    assert services.survey_clients(survey, other_team).count() == 0
    assert services.survey_clients(survey, own_team).count() == 2
    # and sending it as team B's manager invites nobody outside team B
    with django_capture_on_commit_callbacks(execute=True):
        assert services.survey_send(by=other_team, survey=survey) == 0
    assert SurveyInvitation.objects.filter(survey=survey).count() == 0
