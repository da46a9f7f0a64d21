"""What the clients module adds to the shell: menu, dashboard figures, global search."""

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from clientbase.clients import queries, search
from clientbase.core import clock
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


def _new_this_month(user) -> int:
    first = clock.today().replace(day=1)
    return queries.clients_for(user).filter(created_at__gte=clock.start_of_day(first)).count()


def _mine(user) -> int:
    return queries.clients_for(user).filter(owner=user).count()


def _unmanaged(user) -> int:
    return queries.clients_for(user).filter(owner__isnull=True).count()


def _active(user) -> int:
    return queries.clients_for(user).filter(status="active").count()


def _find(user, text: str, limit: int) -> list[SearchHit]:
    return [
        SearchHit(
            title=f"{c.number} · {c.name}",
            detail=c.email,
            url=reverse("clients:detail", args=[c.pk]),
        )
        for c in search.quick_search(user, text, limit=limit)
    ]


def _account_figures(user, client) -> list[tuple[str, str]]:
    since = client.status_since or client.created_at.date()
    return [
        (_("Status"), client.get_status_display()),
        (_("Since"), since.isoformat()),
        (_("Client since"), timezone.localdate(client.created_at).isoformat()),
        (_("Owner"), client.owner.display_name if client.owner else "—"),
        (_("Client group"), client.group.name if client.group else "—"),
    ]


def _activity_figures(user, client) -> list[tuple[str, str]]:
    counts = queries.note_counts(client)
    last = queries.newsfeed_of(user, client).first()
    return [
        (_("Notes, last 24 hours"), str(counts.last_day)),
        (_("Notes, two months"), str(counts.last_two_months)),
        (_("Documents"), str(queries.documents_of(user, client).count())),
        (_("Last event"), timezone.localdate(last.occurred_at).isoformat() if last else "—"),
    ]


def _group_figures(user, client) -> list[tuple[str, str]]:
    members = queries.clients_for(user).filter(parent=client).count()
    if client.parent_id is None and not members:
        return []
    parent = client.parent
    return [
        (_("Parent company"), parent.name if parent else "—"),
        (_("Member companies"), str(members)),
        (_("Charges go to the parent"), _("Yes") if client.bill_to_parent else _("No")),
    ]


def _run_deferred_actions(day) -> str:
    from clientbase.clients.services import deferred_actions_run_due

    done, failed = deferred_actions_run_due(day)
    return ngettext(
        "%(done)d deferred action done, %(failed)d failed",
        "%(done)d deferred actions done, %(failed)d failed",
        done,
    ) % {"done": done, "failed": failed}


def _sweep_import_uploads(day) -> str:
    from clientbase.clients.io_views import sweep_uploads

    gone = sweep_uploads()
    return ngettext(
        "%(count)d import upload older than a day removed",
        "%(count)d import uploads older than a day removed",
        gone,
    ) % {"count": gone}


def register() -> None:
    """Hook the clients module into the navigation, dashboard, search and daily jobs."""
    register_job("deferred_actions", _("Run the deferred account changes that fall due"))(
        _run_deferred_actions
    )
    register_job("import_uploads", _("Remove client import files older than a day"))(
        _sweep_import_uploads
    )
    register_nav(NavEntry("clients", _("All clients"), "clients:list"))
    register_nav(NavEntry("clients", _("Add a client"), "clients:add", "clients.add"))
    register_counter(
        Counter("clients.active", _("Active clients"), _active, "clients:list", "people")
    )
    register_counter(
        Counter(
            "clients.new",
            _("New clients this month"),
            _new_this_month,
            "clients:list",
            "person-plus",
        )
    )
    register_counter(
        Counter(
            "clients.mine",
            _("My clients"),
            _mine,
            "clients:list",
            "person-badge",
            url_query="?mine=1",
        )
    )
    register_counter(
        Counter(
            "clients.unmanaged",
            _("Clients without a manager"),
            _unmanaged,
            "clients:list",
            "person-exclamation",
            url_query="?unmanaged=1",
        )
    )
    register_search(SearchSource(_("Clients"), _find))
    register_profile_block(ProfileBlock("account", _("Account"), _account_figures, "person-vcard"))
    register_profile_block(ProfileBlock("activity", _("Activity"), _activity_figures, "activity"))
    register_profile_block(
        ProfileBlock("group", _("Group of companies"), _group_figures, "diagram-3")
    )
