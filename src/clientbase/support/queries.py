"""Reads of the support desk, always scoped to what the user may see."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Avg, Count, Q, QuerySet
from django.http import Http404

from clientbase.core import clock
from clientbase.core.visibility import visible
from clientbase.support.models import (
    KbArticle,
    Survey,
    SurveyAnswer,
    SurveyInvitation,
    SurveyQuestion,
    Ticket,
    TicketMessage,
    TicketRating,
)

PAGE_SIZE = 50


def tickets_for(user) -> QuerySet[Ticket]:
    """The tickets a user may see (merged ones included, as pointers)."""
    return visible(Ticket.objects.all(), user)


def ticket_get(user, number: str) -> Ticket:
    """One ticket by number, or 404 when it is missing or out of the user's sight."""
    ticket = (
        tickets_for(user)
        .select_related("client", "contact", "department", "owner", "merged_into", "closed_by")
        .filter(number=number)
        .first()
    )
    if ticket is None:
        raise Http404
    return ticket


@dataclass(frozen=True)
class TicketFilters:
    """What a ticket list may be narrowed by; every field is optional."""

    status: str = ""  # a status, "awaiting", "unresolved" or "" (all)
    department: int | None = None
    priority: str = ""
    assignee: str = ""  # "me", "none" or a user id
    client: int | None = None
    overdue: bool = False
    complaint: bool = False
    q: str = ""


def _filtered(user, filters: TicketFilters) -> QuerySet[Ticket]:
    tickets = tickets_for(user).filter(merged_into=None)
    if filters.status == "awaiting":
        tickets = tickets.filter(status__in=Ticket.AWAITING)
    elif filters.status == "unresolved":
        tickets = tickets.filter(status__in=Ticket.UNRESOLVED)
    elif filters.status in Ticket.Status.values:
        tickets = tickets.filter(status=filters.status)
    if filters.department:
        tickets = tickets.filter(department_id=filters.department)
    if filters.priority in ("low", "medium", "high", "urgent"):
        tickets = tickets.filter(priority=filters.priority)
    if filters.assignee == "me":
        tickets = tickets.filter(owner=user)
    elif filters.assignee == "none":
        tickets = tickets.filter(owner=None)
    elif filters.assignee.isdigit():
        tickets = tickets.filter(owner_id=int(filters.assignee))
    if filters.client:
        tickets = tickets.filter(client_id=filters.client)
    if filters.overdue:
        tickets = tickets.filter(due_at__lt=clock.now())
    if filters.complaint:
        tickets = tickets.filter(is_complaint=True, status__in=Ticket.UNRESOLVED)
    text = " ".join(filters.q.split())
    if text:
        number = text.lstrip("#")
        if re.fullmatch(r"\d{1,12}", number):
            tickets = tickets.filter(Q(number=number.zfill(6)) | Q(number=number))
        elif "@" in text:
            tickets = tickets.filter(email=text.lower())
        else:
            tickets = tickets.filter(subject_search__contains=text.lower())
    return tickets


@dataclass(frozen=True)
class TicketPage:
    """One page of a ticket list, newest first, and the id to continue after."""

    items: list[Ticket]
    next_after: int | None


def ticket_page(
    user, filters: TicketFilters, *, after: int | None = None, size: int = PAGE_SIZE
) -> TicketPage:
    """A page of tickets by -id from `after` (keyset: as fast on page 1,000 as on page 1)."""
    tickets = _filtered(user, filters).select_related("client", "department", "owner")
    if after is not None:
        tickets = tickets.filter(pk__lt=after)
    rows = list(tickets.order_by("-id")[: size + 1])
    items = rows[:size]
    return TicketPage(items=items, next_after=items[-1].pk if len(rows) > size else None)


def ticket_list(user, filters: TicketFilters) -> QuerySet[Ticket]:
    """The filtered tickets as a queryset, newest first (for the API's offset pages)."""
    return _filtered(user, filters).select_related("client", "department", "owner").order_by("-id")


def awaiting_reply(user) -> QuerySet[Ticket]:
    """Tickets whose customer spoke last: the "awaiting reply" counter."""
    return tickets_for(user).filter(status__in=Ticket.AWAITING, merged_into=None)


def overdue(user) -> QuerySet[Ticket]:
    """Tickets past their response deadline."""
    return tickets_for(user).filter(due_at__lt=clock.now(), merged_into=None)


def my_queue(user) -> QuerySet[Ticket]:
    """The unresolved tickets assigned to the user."""
    return tickets_for(user).filter(owner=user, status__in=Ticket.UNRESOLVED, merged_into=None)


def thread(ticket: Ticket, *, customer_view: bool = False) -> list[TicketMessage]:
    """A ticket's messages in order with their attachments; notes only for staff."""
    messages = ticket.messages.select_related("author").prefetch_related("attachments")
    if customer_view:
        messages = messages.exclude(kind=TicketMessage.Kind.NOTE)
    return list(messages.order_by("created_at", "id"))


def client_tickets(user, client, limit: int = 100) -> list[Ticket]:
    """All tickets of a client, newest first."""
    return list(
        tickets_for(user)
        .filter(client=client, merged_into=None)
        .select_related("department", "owner")
        .order_by("-id")[:limit]
    )


@dataclass(frozen=True)
class ClientSupport:
    """A client's support figures for the profile."""

    open: int
    total: int
    complaints: int


def client_support(client) -> ClientSupport:
    """Open and total tickets of a client, and unresolved complaints."""
    figures = Ticket.objects.filter(client=client, merged_into=None).aggregate(
        total=Count("id"),
        open=Count("id", filter=Q(status__in=Ticket.UNRESOLVED)),
        complaints=Count("id", filter=Q(status__in=Ticket.UNRESOLVED, is_complaint=True)),
    )
    return ClientSupport(**figures)


def has_open_complaint(client) -> bool:
    """Whether a client has an unresolved complaint ticket (SUP-5)."""
    return Ticket.objects.filter(
        client=client, is_complaint=True, status__in=Ticket.UNRESOLVED, merged_into=None
    ).exists()


# --- knowledge base ---------------------------------------------------------------------------

_WORD = re.compile(r"\w{4,}", re.UNICODE)
# Words too common to tell articles apart, in the languages the product speaks.
_COMMON = {
    "that", "this", "with", "have", "from", "your", "what", "when", "will", "please",
    "hello", "thanks", "thank", "there", "would", "could", "about",
    "есть", "этот", "была", "было", "если", "когда", "пожалуйста", "здравствуйте", "спасибо",
    "pour", "avec", "dans", "vous", "nous", "merci", "bonjour",
}  # fmt: skip


def articles(*, q: str = "", category: int | None = None, published_only: bool = False):
    """Articles by a fragment of their title, keywords or text (every word must match)."""
    found = KbArticle.objects.select_related("category")
    if published_only:
        found = found.filter(published=True)
    if category:
        found = found.filter(category_id=category)
    for word in q.lower().split()[:8]:
        found = found.filter(search_text__contains=word)
    return found


def suggested_articles(text: str, limit: int = 5) -> list[KbArticle]:
    """Published articles that share the most telling words with a ticket or a reply draft."""
    words = [w for w in dict.fromkeys(_WORD.findall(text.lower())) if w not in _COMMON][:12]
    if not words:
        return []
    condition = Q()
    for word in words:
        condition |= Q(search_text__contains=word)
    candidates = list(
        KbArticle.objects.filter(condition, published=True).select_related("category")[:200]
    )

    def score(article: KbArticle) -> tuple[int, int]:
        title = article.title.lower()
        return (
            sum(2 if w in title else 1 for w in words if w in article.search_text),
            -article.pk,
        )

    return sorted(candidates, key=score, reverse=True)[:limit]


# --- feedback ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreRow:
    """Ratings of one agent or department."""

    name: str
    count: int
    average: float
    distribution: dict[int, int]


def _score_rows(ratings: QuerySet, key: str, name_of) -> list[ScoreRow]:
    rows = (
        ratings.values(key)
        .annotate(
            count=Count("id"),
            average=Avg("score"),
            **{f"s{n}": Count("id", filter=Q(score=n)) for n in range(1, 6)},
        )
        .order_by(key)
    )
    return sorted(
        (
            ScoreRow(
                name=name_of(row[key]),
                count=row["count"],
                average=round(float(row["average"]), 2),
                distribution={n: row[f"s{n}"] for n in range(1, 6)},
            )
            for row in rows
        ),
        key=lambda r: (-r.average, r.name),
    )


def ratings_for(user, *, since=None, until=None) -> QuerySet[TicketRating]:
    """The ratings of tickets the user may see, in a date range."""
    ratings = visible(TicketRating.objects.all(), user)
    if since:
        ratings = ratings.filter(rated_at__date__gte=since)
    if until:
        ratings = ratings.filter(rated_at__date__lte=until)
    return ratings


def scores_by_agent(user, **dates) -> list[ScoreRow]:
    """Average score and spread per agent (SUP-7)."""
    from clientbase.accounts.models import User

    ratings = ratings_for(user, **dates)
    names = {u.pk: u.display_name for u in User.objects.filter(pk__in=ratings.values("agent"))}
    return _score_rows(ratings, "agent", lambda pk: names.get(pk, "—"))


def scores_by_department(user, **dates) -> list[ScoreRow]:
    """Average score and spread per department (SUP-7)."""
    from clientbase.support.models import Department

    names = dict(Department.objects.values_list("pk", "name"))
    return _score_rows(ratings_for(user, **dates), "department", lambda pk: names.get(pk, "—"))


@dataclass(frozen=True)
class QuestionResult:
    """The answers to one survey question, summed up."""

    question: SurveyQuestion
    answered: int
    counts: list[tuple[str, int]]  # option or score, and how many chose it
    average: float | None
    texts: list[str]


def survey_results(survey: Survey, user) -> list[QuestionResult]:
    """Each question's answers from clients the user may see: counts, average, free texts."""
    seen = visible(SurveyInvitation.objects.filter(survey=survey), user)
    results = []
    for question in survey.questions.all():
        answers = SurveyAnswer.objects.filter(question=question, invitation__in=seen)
        answered = answers.count()
        counts: list[tuple[str, int]] = []
        average = None
        texts: list[str] = []
        if question.kind == SurveyQuestion.Kind.CHOICE:
            chosen = dict(answers.values_list("choice").annotate(n=Count("id")))
            counts = [(option, chosen.get(option, 0)) for option in question.choices]
        elif question.kind == SurveyQuestion.Kind.SCALE:
            scored = dict(answers.values_list("score").annotate(n=Count("id")))
            counts = [(str(n), scored.get(n, 0)) for n in range(1, 6)]
            mean = answers.aggregate(a=Avg("score"))["a"]
            average = round(float(mean), 2) if mean is not None else None
        else:
            texts = list(answers.order_by("-id").values_list("text", flat=True)[:200])
        results.append(QuestionResult(question, answered, counts, average, texts))
    return results
