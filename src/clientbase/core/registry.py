"""What modules add to the shell: navigation entries, dashboard counters, search sources."""

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

SECTIONS: list[tuple[str, Promise, str]] = [
    ("clients", _("Clients"), "people"),
    ("sales", _("Sales"), "graph-up-arrow"),
    ("billing", _("Billing"), "receipt"),
    ("support", _("Support"), "life-preserver"),
    ("reports", _("Reports"), "bar-chart"),
    ("settings", _("Settings"), "gear"),
]


@dataclass(frozen=True)
class NavEntry:
    """A link in a section's menu, shown to users allowed the permission (if any)."""

    section: str
    label: Promise
    url_name: str
    permission: str | None = None


@dataclass(frozen=True)
class Counter:
    """A dashboard figure: what it counts for a user, and where a click leads."""

    key: str
    label: Promise
    count: Callable  # (user) -> int, or a capped label such as "99+"; through visibility
    url_name: str
    icon: str = "circle"
    permission: str | None = None
    url_query: str = ""


@dataclass(frozen=True)
class SearchHit:
    """One result of the global search."""

    title: str
    detail: str
    url: str


@dataclass(frozen=True)
class SearchSource:
    """A module's part of the global search."""

    label: Promise
    find: Callable  # (user, text, limit) -> list[SearchHit]


@dataclass(frozen=True)
class ProfileBlock:
    """A summary block on a client's profile (billing adds paid/unpaid sums, support tickets)."""

    key: str
    label: Promise
    figures: Callable  # (user, client) -> list[tuple[label, value]]; empty hides the block
    icon: str = "info-circle"


NAV: list[NavEntry] = []
PROFILE_BLOCKS: list[ProfileBlock] = []
COUNTERS: list[Counter] = []
SEARCH_SOURCES: list[SearchSource] = []


def register_nav(entry: NavEntry) -> None:
    """Add a menu entry (once: modules register at import of their apps.ready)."""
    if entry not in NAV:
        NAV.append(entry)


def register_counter(counter: Counter) -> None:
    """Add a dashboard figure."""
    if all(c.key != counter.key for c in COUNTERS):
        COUNTERS.append(counter)


def register_search(source: SearchSource) -> None:
    """Add a source to the global search."""
    if source not in SEARCH_SOURCES:
        SEARCH_SOURCES.append(source)


def navigation_for(user) -> list[dict]:
    """The sections with at least one entry the user may open, in the fixed order."""
    sections = []
    for key, label, icon in SECTIONS:
        entries = [
            e
            for e in NAV
            if e.section == key and (e.permission is None or user.has_perm(e.permission))
        ]
        if entries:
            sections.append({"key": key, "label": label, "icon": icon, "entries": entries})
    return sections


def register_profile_block(block: ProfileBlock) -> None:
    """Add a summary block to the client profile."""
    if all(b.key != block.key for b in PROFILE_BLOCKS):
        PROFILE_BLOCKS.append(block)


def profile_blocks(user, client) -> list[dict]:
    """The summary blocks that have something to show for this client."""
    shown = []
    for block in PROFILE_BLOCKS:
        figures = block.figures(user, client)
        if figures:
            shown.append(
                {"key": block.key, "label": block.label, "icon": block.icon, "figures": figures}
            )
    return shown
