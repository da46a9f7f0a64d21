"""Reads of the support desk, always scoped to what the user may see."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import Avg, Count, F, Lookup, Q, QuerySet
from django.http import Http404
from django.utils.formats import number_format

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
# What a list row shows (support/_ticket_rows.html): a page loads no more of the ticket, its
# client and its people, so its 51 rows cost less to fetch and to build.
LIST_FIELDS = (
    "number", "subject", "is_complaint", "email", "priority", "status", "last_activity_at",
    "due_at", "client", "client__name", "department", "department__name", "owner",
    "owner__first_name", "owner__last_name", "owner__username",
)  # fmt: skip
# Counters count no further: past it they read "99+", as badges do (an exact figure that
# large tells an agent nothing more). Each row counted for a user who sees only their own
# clients' tickets costs a look-up of its client: at 1,000 that took 60 ms and more at a
# million tickets on PostgreSQL, at 99 a few milliseconds.
COUNT_CAP = 99
# SQLite's trigram index of subjects (migration 0007_ticket_subject_fts); PostgreSQL has a
# pg_trgm index on subject_search (0003). A trigram index finds fragments of 3 characters up.
SUBJECT_TABLE = "support_ticket_subject"
SUBJECT_ROWID = "subject_rowid"
MIN_FRAGMENT = 3


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


class _InConstants(Lookup):
    """`lhs IN ('a', 'b')` with the code's own constants written into the statement.

    SQLite uses a partial index only when the query repeats its condition, and a bound
    parameter never matches the index's literal: so the statuses of the partial indexes
    (Ticket.AWAITING, UNRESOLVED) go in as literals, in the indexes' order.
    """

    lookup_name = "in_constants"
    prepare_rhs = False
    _SAFE = re.compile(r"[a-z_]+")

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        if not all(self._SAFE.fullmatch(value) for value in self.rhs):
            raise ValueError(f"not a status constant: {self.rhs!r}")
        values = ", ".join(f"'{value}'" for value in self.rhs)
        return f"{lhs} IN ({values})", params


def _status_in(statuses: tuple[str, ...]) -> _InConstants:
    return _InConstants(F("status"), statuses)


def _filtered(user, filters: TicketFilters) -> QuerySet[Ticket]:
    tickets = tickets_for(user).filter(merged_into=None)
    if filters.status == "awaiting":
        tickets = tickets.filter(_status_in(Ticket.AWAITING))
    elif filters.status == "unresolved":
        tickets = tickets.filter(_status_in(Ticket.UNRESOLVED))
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
        tickets = tickets.filter(_status_in(Ticket.UNRESOLVED), is_complaint=True)
    text = " ".join(filters.q.split())
    if text:
        number = text.lstrip("#")
        if re.fullmatch(r"\d{1,12}", number):
            tickets = tickets.filter(Q(number=number.zfill(6)) | Q(number=number))
        elif "@" in text:
            tickets = tickets.filter(email=text.lower())
        else:
            tickets = _subject_matching(tickets, text.lower())
    return tickets


def _subject_matching(tickets: QuerySet[Ticket], fragment: str) -> QuerySet[Ticket]:
    """The tickets whose lower-cased subject holds the fragment.

    On SQLite through the FTS5 trigram table, joined by rowid (= the ticket id) and ordered
    by that rowid (see _newest_first): SQLite then walks the matches newest first and stops
    at the page's end, for a common fragment as for a rare one. A phrase of the trigram
    tokenizer matches exactly the substring. Shorter fragments than a trigram read the table.
    """
    if connection.vendor != "sqlite" or len(fragment) < MIN_FRAGMENT:
        return tickets.filter(subject_search__contains=fragment)
    table = Ticket._meta.db_table
    return tickets.extra(
        tables=[SUBJECT_TABLE],
        where=[f"{SUBJECT_TABLE}.rowid = {table}.id", f"{SUBJECT_TABLE} MATCH %s"],
        params=['"' + fragment.replace('"', '""') + '"'],
        select={SUBJECT_ROWID: f"{SUBJECT_TABLE}.rowid"},
    )


def _newest_first(tickets: QuerySet[Ticket], after: int | None = None) -> QuerySet[Ticket]:
    """By -id from below `after`; a SQLite subject search by the FTS rowid, the same id."""
    if SUBJECT_ROWID in tickets.query.extra_select:
        if after is not None:
            tickets = tickets.extra(where=[f"{SUBJECT_TABLE}.rowid < %s"], params=[after])
        return tickets.extra(order_by=[f"-{SUBJECT_ROWID}"])
    if after is not None:
        tickets = tickets.filter(pk__lt=after)
    return tickets.order_by("-id")


@dataclass(frozen=True)
class TicketPage:
    """One page of a ticket list, newest first, and the id to continue after."""

    items: list[Ticket]
    next_after: int | None


def ticket_page(
    user, filters: TicketFilters, *, after: int | None = None, size: int = PAGE_SIZE
) -> TicketPage:
    """A page of tickets by -id from `after` (keyset: as fast on page 1,000 as on page 1)."""
    tickets = (
        _filtered(user, filters).select_related("client", "department", "owner").only(*LIST_FIELDS)
    )
    rows = list(_newest_first(tickets, after)[: size + 1])
    items = rows[:size]
    return TicketPage(items=items, next_after=items[-1].pk if len(rows) > size else None)


def ticket_list(user, filters: TicketFilters) -> QuerySet[Ticket]:
    """The filtered tickets as a queryset, newest first (for the API's offset pages)."""
    return _newest_first(_filtered(user, filters).select_related("client", "department", "owner"))


def count_upto(tickets: QuerySet) -> int:
    """How many rows, counted no further than COUNT_CAP + 1 (count_label shows "99+")."""
    return tickets.order_by()[: COUNT_CAP + 1].count()


def count_label(count: int) -> str:
    """A counter as shown: the number with thousands grouped, "99+" past COUNT_CAP."""
    cap = COUNT_CAP
    if count > cap:
        return number_format(cap, force_grouping=True) + "+"
    return number_format(count, force_grouping=True)


def awaiting_reply(user) -> QuerySet[Ticket]:
    """Tickets whose customer spoke last: the "awaiting reply" counter."""
    return tickets_for(user).filter(_status_in(Ticket.AWAITING), merged_into=None)


def overdue(user) -> QuerySet[Ticket]:
    """Tickets past their response deadline."""
    return tickets_for(user).filter(due_at__lt=clock.now(), merged_into=None)


def my_queue(user) -> QuerySet[Ticket]:
    """The unresolved tickets assigned to the user."""
    return tickets_for(user).filter(_status_in(Ticket.UNRESOLVED), owner=user, merged_into=None)


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
