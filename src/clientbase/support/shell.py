"""What support adds to the shell: permissions, menu, dashboard figures, profile block, jobs."""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from clientbase.accounts.permissions import register_action
from clientbase.core.cron import register_job
from clientbase.core.registry import (
    Counter,
    NavEntry,
    ProfileBlock,
    SearchHit,
    SearchSource,
    register_counter,
    register_nav,
    register_profile_block,
    register_search,
)
from clientbase.support import queries

SUPPORT = _("Support")


def _support_figures(user, client) -> list[tuple]:
    figures = queries.client_support(client)
    if not figures.total:
        return []
    rows = [(_("Open tickets"), figures.open), (_("All tickets"), figures.total)]
    if figures.complaints:
        rows.append((_("Unresolved complaints"), figures.complaints))
    return rows


def _capped(tickets) -> int | str:
    """A dashboard figure: the count, or "99+" past the cap."""
    # The text is formatted here: the dashboard's intcomma leaves a text as it is.
    count = queries.count_upto(tickets)
    return count if count <= queries.COUNT_CAP else queries.count_label(count)


def _find(user, text: str, limit: int) -> list[SearchHit]:
    from django.urls import reverse

    found = queries.ticket_list(user, queries.TicketFilters(q=text))[:limit]
    return [
        SearchHit(
            title=f"#{t.number} {t.subject}",
            detail=f"{t.get_status_display()} · {t.client.name if t.client else t.email}",
            url=reverse("support:ticket", args=[t.number]),
        )
        for t in found
    ]


def _escalate(day) -> str:
    from clientbase.support.services import tickets_escalate

    count = tickets_escalate()
    return ngettext(
        "%(count)d overdue ticket escalated", "%(count)d overdue tickets escalated", count
    ) % {"count": count}


def _poll_mail(day) -> str:
    from clientbase.support.imap import poll_all

    return poll_all()


def _retry_mail(day) -> str:
    from clientbase.support.mail import retry_unsent

    count = retry_unsent()
    return ngettext(
        "%(count)d unsent ticket mail sent again", "%(count)d unsent ticket mails sent again", count
    ) % {"count": count}


def register() -> None:
    """Hook support into roles, navigation, the dashboard, search and the client profile."""
    for code, label in [
        ("support.work", _("Open, answer, assign, transfer and close tickets")),
        ("support.merge", _("Merge tickets")),
        ("support.kb", _("Write knowledge base articles")),
        ("support.settings", _("Set up departments, mailboxes and reply templates")),
        ("support.surveys", _("Send surveys and read feedback reports")),
        ("support.ingest", _("Deliver received mail through the API")),
    ]:
        register_action(code, label, SUPPORT)
    register_job("support_escalate", _("Escalate tickets past their response deadline"))(_escalate)
    register_job("support_mail_poll", _("Fetch new mail from the departments' mailboxes"))(
        _poll_mail
    )
    register_job("support_mail_retry", _("Send ticket mail that failed to go out"))(_retry_mail)
    register_nav(NavEntry("support", _("Tickets"), "support:tickets"))
    register_nav(NavEntry("support", _("Open a ticket"), "support:open", "support.work"))
    register_nav(NavEntry("support", _("Knowledge base"), "support:kb"))
    register_nav(NavEntry("support", _("Feedback"), "support:feedback", "support.surveys"))
    register_nav(NavEntry("support", _("Surveys"), "support:surveys", "support.surveys"))
    register_nav(NavEntry("support", _("Departments"), "support:departments", "support.settings"))
    register_nav(NavEntry("support", _("Reply templates"), "support:templates", "support.settings"))
    register_nav(NavEntry("support", _("Received mail"), "support:inbound", "support.settings"))
    register_counter(
        Counter(
            "support.awaiting",
            _("Tickets awaiting reply"),
            lambda user: _capped(queries.awaiting_reply(user)),
            "support:tickets",
            "chat-left-dots",
            url_query="?status=awaiting",
        )
    )
    register_counter(
        Counter(
            "support.overdue",
            _("Overdue tickets"),
            lambda user: _capped(queries.overdue(user)),
            "support:tickets",
            "alarm",
            url_query="?overdue=1",
        )
    )
    register_counter(
        Counter(
            "support.mine",
            _("My ticket queue"),
            lambda user: _capped(queries.my_queue(user)),
            "support:tickets",
            "person-workspace",
            url_query="?assignee=me&status=unresolved",
        )
    )
    register_search(SearchSource(_("Tickets"), _find))
    register_profile_block(ProfileBlock("support", SUPPORT, _support_figures, "life-preserver"))
