"""Client search (PLT-4) and duplicate detection (CUS-3), fast at a million clients.

Quick search looks for a fragment in each client's document: number, name, company name,
email, phone, tax id, national id and the searchable custom field values (`custom_search`),
a newline apart. A trigram index answers it: an FTS5 table on SQLite, a pg_trgm GIN index on
PostgreSQL (migration 0008_search_index). Matching is by substring, case-insensitive (accents
count: "elo" does not find "Élodie").

- Each word of 3 characters or more must occur somewhere in the document; shorter words
  among them are left out (a trigram index cannot look them up).
- A query of digits and phone signs (`+ - ( ) . /`, spaces) is a number: it matches its
  bare digits, and without a leading national prefix 8 or 0: "8 916 123-45" finds
  +79161234567, "06 12 34" finds +33612345678.
- A query with no word of 3 characters (e.g. "Iv", "42") finds the client numbered exactly
  that, and the clients whose name starts with it (the lower(name) index).
- Results come newest first (-id); quick search puts the client numbered exactly as typed
  first.

Finding "the newest 20 matches" fast is the hard part at a million rows: SQLite's FTS5
walks its matches in id order and stops early; PostgreSQL's trigram index cannot, so
_pg_newest chooses between walking ids and using the index by itself. Pages never count.

Everything goes through `core.visibility`; merged and deleted clients are never found.
"""

import contextlib
import datetime as dt
import functools
import operator
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import (
    BigIntegerField,
    Case,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Max,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast
from django.db.models.lookups import Lookup
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django_countries import countries

from clientbase.clients.models import Client, ClientGroup, Contact, ContactPhone
from clientbase.core import clock
from clientbase.core.errors import ServiceError
from clientbase.core.models import CustomField
from clientbase.core.visibility import scope_filter, visible

QUICK_LIMIT = 20
# A trigram index finds substrings of at least three characters.
MIN_FRAGMENT = 3
# Newest names per short (prefix) query that quick search checks for visibility.
SHORT_CANDIDATES = 200
# Older matches (beyond the newest ids walked first) that quick search checks for visibility.
QUICK_CANDIDATES = 5000
# The columns quick search loads: what a search box shows of a client.
QUICK_FIELDS = (
    "number",
    "kind",
    "name",
    "company_name",
    "email",
    "phone",
    "tax_id",
    "status",
    "owner",
    "org_unit",
)
# Matches shown per identifier: enough to warn, not a list of every family sharing a phone.
DUPLICATES_PER_FIELD = 5
# The columns loaded of a duplicate (others load when read).
DUPLICATE_FIELDS = (
    "number",
    "kind",
    "name",
    "email",
    "phone",
    "tax_id",
    "national_id",
    "status",
    "owner",
    "org_unit",
)

# Must equal the migration's: the index is on this very text (tests/clients/test_search.py).
DOCUMENT_COLUMNS = (
    "number",
    "name",
    "company_name",
    "email",
    "phone",
    "tax_id",
    "national_id",
    "custom_search",
)
SQLITE_TABLE = "clients_client_search"
# pg_trgm splits words at punctuation, so "o.dang" would leave it only "dang" to look up
# (tens of thousands of rows to recheck); in the PostgreSQL document these signs become
# letters nobody types, so trigrams span them, and fragments are translated alike. (FTS5's
# trigram tokenizer keeps punctuation: SQLite needs no such thing.) replace(), four times,
# costs far less a row than one translate().
PG_JOINED = ".@-_"
PG_JOINERS = "ǀǁǂǃ"
_PG_JOIN = str.maketrans(PG_JOINED, PG_JOINERS)
SQLITE_TRIGGERS = (
    "clients_client_search_ai",
    "clients_client_search_ad",
    "clients_client_search_au",
)
PG_INDEX = "clients_client_search_trgm"
# Documents in the sample ANALYZE keeps of the index's expression, which the planner tests a
# fragment against to guess its matches (migration 0014): with PostgreSQL's default 100 a
# fragment in 2% of the clients is often taken for a rare one and all its matches are read.
PG_STATISTICS = 1000
# The FTS rowid a SQLite search selects and orders by; keyset_page pages by it.
SEARCH_ROWID = "search_rowid"
# The alias of the document a PostgreSQL search filters on; keyset_page looks for it.
SEARCH_DOCUMENT = "search_document"
# Newest clients a PostgreSQL search reads in id order before it turns to the index, and
# the most it reads on in id order when the first ones held some matches.
WINDOW = 1000
WALK_ON_ROWS = 5_000
# Newest ids whose matches a SQLite search walks before it takes the rest as a set.
SQLITE_WINDOW = 20_000

# Client numbers have digits and no spaces: such a text may be one, worth a look-up.
_MAYBE_NUMBER = re.compile(r"\S*[0-9]\S*")
_PHONE_LIKE = re.compile(r"[0-9\s()+\-./]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- Quick search ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    """A quick-search text read: any of `alternatives` (each: all of its substrings), or a prefix."""

    alternatives: tuple[tuple[str, ...], ...] = ()
    prefix: str = ""


def _digit_variants(text: str) -> list[str]:
    """The bare digits of a phone-like text, and without a national prefix 8 or 0."""
    if not _PHONE_LIKE.fullmatch(text):
        return []
    digits = re.sub(r"[^0-9]", "", text)
    variants = [digits] if len(digits) >= MIN_FRAGMENT else []
    national = not text.lstrip("( ").startswith("+")
    if national and digits[:1] in ("8", "0") and len(digits) - 1 >= MIN_FRAGMENT:
        variants.append(digits[1:])
    return variants


def _read(text: str) -> _Query:
    """What a quick-search text asks for; control characters and extra spaces dropped."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    if not text:
        return _Query()
    alternatives: list[tuple[str, ...]] = []
    digits = _digit_variants(text)
    if digits:
        # A number as typed, in one piece: "8 916 123" is one number, not three words.
        compact = text.replace(" ", "")
        alternatives += [
            (variant,) for variant in [compact, *digits] if len(variant) >= MIN_FRAGMENT
        ]
    else:
        words = tuple(dict.fromkeys(w.lower() for w in text.split() if len(w) >= MIN_FRAGMENT))
        if words:
            alternatives.append(words)
    alternatives = list(dict.fromkeys(alternatives))
    if not alternatives:
        return _Query(prefix=text)
    return _Query(alternatives=tuple(alternatives))


class Document(Func):
    """A client's searchable text as SQL, the same expression the PostgreSQL index is on."""

    output_field = TextField()
    template = "(%(expressions)s)"
    arg_joiner = " || char(10) || "

    def __init__(self):
        super().__init__(*(F(column) for column in DOCUMENT_COLUMNS))

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template=_pg_joined("(%(expressions)s)"),
            arg_joiner=" || E'\\n' || ",
            **extra,
        )


def _pg_joined(document: str) -> str:
    """The PostgreSQL document with its punctuation made letters (see PG_JOINED)."""
    for sign, letter in zip(PG_JOINED, PG_JOINERS, strict=True):
        document = f"replace({document}, '{sign}', '{letter}')"
    return document


class Like(Lookup):
    """`lhs LIKE rhs`, case-insensitive (ILIKE on PostgreSQL), `\\` escaping the wildcards."""

    lookup_name = "clientbase_like"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        operator = "ILIKE" if connection.vendor == "postgresql" else "LIKE"
        return f"{lhs} {operator} {rhs} ESCAPE '\\'", [*lhs_params, *rhs_params]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _fts_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _fts_query(query: _Query) -> str:
    """An FTS5 MATCH expression: OR of alternatives, each an AND of quoted substrings."""
    return " OR ".join(
        "(" + " AND ".join(_fts_phrase(word) for word in words) + ")"
        for words in query.alternatives
    )


def _regex_escape(text: str) -> str:
    # In a PostgreSQL regular expression, a backslash before any non-alphanumeric is literal.
    return "".join(c if c.isalnum() else "\\" + c for c in text)


def _document_condition(query: _Query) -> Q:
    """The trigram-indexed condition on PostgreSQL, on the document alias.

    Each word is an ILIKE '%word%'; alternatives of one word each (a phone number's forms)
    are one case-insensitive regular expression, so a row is read once, not once per form.
    """
    document = F(SEARCH_DOCUMENT)
    alternatives = [[word.translate(_PG_JOIN) for word in words] for words in query.alternatives]
    if len(alternatives) > 1 and all(len(words) == 1 for words in alternatives):
        forms = "|".join(_regex_escape(words[0]) for words in alternatives)
        return Q(**{f"{SEARCH_DOCUMENT}__iregex": f"({forms})"})
    return functools.reduce(
        operator.or_,
        (
            functools.reduce(
                operator.and_,
                (Q(Like(document, Value(f"%{_escape_like(word)}%"))) for word in words),
            )
            for words in alternatives
        ),
    )


def _name_starts(prefix: str) -> list[str]:
    """The lower(name) values a name starting with the prefix begins with, per database."""
    if connection.vendor != "sqlite":
        return [prefix.lower()]
    # SQLite's lower() folds ASCII only and leaves "Иванов" as it is: try the prefix as
    # typed and with a capital first letter, each lowered the same way.
    typed = "".join(c.lower() if c.isascii() else c for c in prefix)
    capital = typed[:1].upper() + typed[1:]
    capital = "".join(c.lower() if c.isascii() else c for c in capital)
    return list(dict.fromkeys([typed, capital]))


def _prefix_ids(prefix: str, *, newest: int | None) -> RawSQL:
    """Ids of clients numbered exactly `prefix` or whose name starts with it.

    Each name range is read from the lower(name) index; with `newest`, only that many of
    the newest per range, so a one-letter query does not sort a third of the base.
    """
    table = Client._meta.db_table
    parts, params = [], []
    for start in _name_starts(prefix):
        # Every string that starts with `start` sorts before `end`, in code point order.
        end = start[:-1] + chr(ord(start[-1]) + 1)
        bound = f" ORDER BY id DESC LIMIT {newest:d}" if newest else ""
        parts.append(
            f"SELECT id FROM (SELECT id FROM {table} WHERE lower(name) >= %s"
            f" AND lower(name) < %s{bound}) AS names{len(parts)}"
        )
        params += [start, end]
    parts.append(f"SELECT id FROM {table} WHERE number = %s")
    params.append(prefix)
    return RawSQL(" UNION ALL ".join(parts), params)


def _fts_matching(queryset: QuerySet[Client], match: str) -> QuerySet[Client]:
    """Clients joined to their FTS5 rows, newest first by the FTS rowid (= the client id).

    Ordering by the FTS table's rowid lets SQLite walk the matches newest first and stop at
    the page's end: a fragment in half the base costs as little as a rare one. Ordered by
    clients_client.id instead, SQLite would collect and sort every match first (seconds for
    a common fragment at a million clients). A virtual table has no model, hence extra().
    """
    table = Client._meta.db_table
    return queryset.extra(
        tables=[SQLITE_TABLE],
        where=[f"{SQLITE_TABLE}.rowid = {table}.id", f"{SQLITE_TABLE} MATCH %s"],
        params=[match],
        select={SEARCH_ROWID: f"{SQLITE_TABLE}.rowid"},
        order_by=[f"-{SEARCH_ROWID}"],
    )


def _matching(
    queryset: QuerySet[Client], query: _Query, *, newest: int | None = None
) -> QuerySet[Client]:
    """The clients of the queryset that match, newest first."""
    if query.prefix:
        queryset = queryset.filter(pk__in=_prefix_ids(query.prefix, newest=newest))
    elif query.alternatives and connection.vendor == "sqlite":
        return _fts_matching(queryset, _fts_query(query))
    elif query.alternatives:
        # Named, so keyset_page knows a trigram search (see _pg_newest).
        queryset = queryset.alias(**{SEARCH_DOCUMENT: Document()})
        queryset = queryset.filter(_document_condition(query))
    return queryset.order_by("-id")


def _visible_clients(user) -> QuerySet[Client]:
    return visible(Client.objects.all(), user)


def client_search_queryset(user, text: str) -> QuerySet[Client]:
    """Visible live clients matching a quick-search text, newest first; "" finds them all."""
    return _matching(_visible_clients(user), _read(text))


# --- Keyset pages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeysetPage:
    """One page of a list newest first, and where the next one starts (None: the last page)."""

    items: list
    next_after: int | None


def _pg_newest(queryset: QuerySet, *, after: int | None, count: int) -> list:
    """The newest `count` rows of a PostgreSQL trigram search, in two to four queries.

    Walking ids backwards finds a common fragment at once but reads the whole table for a
    rare one; the trigram index finds a rare one at once but fetches every row of a common
    one. The planner often guesses wrong between them and by far (the filter on the whole
    document costs microseconds a row, far more than it assumes), so the reads here are
    bounded whatever it picks. First the newest WINDOW ids below the top (or `after`):
    walked, or the index's matches intersected with that id range. Their share of matches
    says how far walking on would go; within WALK_ON_ROWS, on through that many ids the
    same way; what is still missing (a rarer fragment) comes through the index, ordered by
    `id + 0` so that the planner cannot walk all the ids instead.
    """
    newest = queryset.order_by("-id")
    if after is not None:
        newest = newest.filter(pk__lt=after)
        top = after
    else:
        top = (Client.everything.aggregate(top=Max("id"))["top"] or 0) + 1
    # Numbers, not subqueries: so the planner knows how few ids a window holds.
    floor = top - WINDOW
    rows = list(newest.filter(pk__gte=floor)[:count])
    missing = count - len(rows)
    if rows and missing and floor > 1 and missing * WINDOW / len(rows) <= WALK_ON_ROWS:
        bottom = floor - WALK_ON_ROWS
        rows += list(newest.filter(pk__gte=bottom, pk__lt=floor)[:missing])
        floor, missing = bottom, count - len(rows)
    if not missing or floor <= 1:
        return rows
    # `id + 0` in the bound too, or PostgreSQL intersects the match bitmap with a bitmap of
    # every id below the floor.
    id_plus_0 = ExpressionWrapper(F("id") + 0, output_field=BigIntegerField())
    rest = newest.alias(id_plus_0=id_plus_0).filter(id_plus_0__lt=floor)
    return rows + list(rest.order_by(F("id_plus_0").desc())[:missing])


def _newest_rows(queryset: QuerySet, *, after: int | None, count: int) -> list:
    """The newest `count` rows of a queryset below id `after`, the fast way for its kind."""
    if SEARCH_ROWID in queryset.query.extra_select:
        # A SQLite quick search: page by the FTS rowid (the same id) so SQLite keeps walking
        # the index newest first from `after` (see _fts_matching).
        page = queryset.order_by(f"-{SEARCH_ROWID}")
        if after is not None:
            page = page.extra(where=[f"{SQLITE_TABLE}.rowid < %s"], params=[after])
        return list(page[:count])
    if SEARCH_DOCUMENT in queryset.query.annotations:
        return _pg_newest(queryset, after=after, count=count)
    page = queryset.order_by("-id")
    if after is not None:
        page = page.filter(pk__lt=after)
    return list(page[:count])


def _page(rows: list, size: int) -> KeysetPage:
    items = rows[:size]
    return KeysetPage(items=items, next_after=items[-1].pk if len(rows) > size else None)


def keyset_page(queryset: QuerySet, *, after: int | None, size: int = 50) -> KeysetPage:
    """The `size` rows after id `after` (None: the first page), by -id; never counts the rows."""
    return _page(_newest_rows(queryset, after=after, count=size + 1), size)


# --- Quick search pages ----------------------------------------------------------------------


def _sqlite_newest(
    base: QuerySet[Client],
    match: str,
    *,
    after: int | None,
    count: int,
    older: int | None,
    narrowed: bool,
) -> list:
    """The newest `count` matches on SQLite, the visible ones of `base`, in one or two queries.

    Walking the FTS index newest first stops at the page's end, but reads every match when
    the user may see few of them (a French seller looking up a Vietnamese name): so it
    walks the newest SQLITE_WINDOW ids only, and takes what is missing as a set (the
    matches' ids, checked against the user's sight by index, then sorted); with `older`,
    only that many of the newest older matches. `narrowed`: `base` has more conditions than
    liveness (the user's sight, or `within`'s own).
    """
    below = [] if after is None else [after]
    top = "%s" if after is not None else f"(SELECT max(id) + 1 FROM {Client._meta.db_table})"
    if narrowed:
        # Given an indexed condition such as the owner's, SQLite (without ANALYZE figures)
        # reads the user's clients first and runs the full-text query once for each: seconds
        # for a seller. The window's matches as a set: the query runs once.
        in_window = RawSQL(
            f"SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH %s"
            f" AND rowid >= {top} - %s" + (" AND rowid < %s" if after is not None else ""),
            [match, *below, SQLITE_WINDOW, *below],
        )
        rows = list(base.filter(pk__in=in_window).order_by("-id")[:count])
    else:
        window = f"{SQLITE_TABLE}.rowid >= {top} - %s"
        walk = _fts_matching(base, match).extra(
            where=[window] + ([f"{SQLITE_TABLE}.rowid < %s"] if after is not None else []),
            params=[*below, SQLITE_WINDOW, *below],
        )
        rows = list(walk[:count])
    if len(rows) < count:
        bound = "" if older is None else f" ORDER BY rowid DESC LIMIT {older:d}"
        matches = RawSQL(
            f"SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH %s"
            f" AND rowid < {top} - %s{bound}",
            [match, *below, SQLITE_WINDOW],
        )
        rows += list(base.filter(pk__in=matches).order_by("-id")[: count - len(rows)])
    return rows


def _newest_matches(
    user,
    query: _Query,
    *,
    after: int | None,
    count: int,
    newest: int | None,
    fields=(),
    within: QuerySet[Client] | None = None,
) -> list[Client]:
    """The newest `count` visible live matches below `after`, the fast way per database."""
    narrowed = within is not None or scope_filter(Client, user) is not None
    # Live clients only, whatever manager `within` came from.
    within = Client.objects.all() if within is None else within
    base = visible(within.filter(merged_into=None, deleted_at=None), user)
    if fields:
        base = base.only(*fields)
    if query.alternatives and connection.vendor == "sqlite":
        match = _fts_query(query)
        return _sqlite_newest(
            base, match, after=after, count=count, older=newest, narrowed=narrowed
        )
    if query.alternatives and newest is not None and after is None:
        return _pg_quick(user, query, base, count=count, older=newest)
    return _newest_rows(_matching(base, query, newest=newest), after=after, count=count)


def _pg_quick(user, query: _Query, base: QuerySet[Client], *, count: int, older: int) -> list:
    """Quick search on PostgreSQL: the newest `count` visible matches among the newest ones.

    As _pg_newest, but the newest WINDOW ids are read for every match, visible or not (the
    flag from core.visibility's own condition), so their share tells how common the
    fragment is. Beyond the window, when the share the user may see promises the missing
    rows within WALK_ON_ROWS ids, those are walked in id order (an administrator looking up
    a common name reads a few thousand rows, not every match); what is still missing comes
    through the index, and for a common fragment only over the ids that should hold about
    `older` matches: a seller looking up a name common among other sellers' clients gets
    an answer at once, not after thousands of rows.
    """
    top = (Client.everything.aggregate(top=Max("id"))["top"] or 0) + 1
    floor = top - WINDOW
    scope = scope_filter(Client, user)
    seen = Value(True) if scope is None else Case(When(scope, then=True), default=False)
    window = _matching(Client.objects.filter(pk__gte=floor), query).annotate(seen_by_user=seen)
    hits = list(window.values_list("pk", "seen_by_user"))
    shown = [pk for pk, may_see in hits if may_see][:count]
    rows = list(base.filter(pk__in=shown).order_by("-id")) if shown else []
    missing = count - len(rows)
    if not missing or floor <= 1:
        return rows
    matching = _matching(base, query)
    lowest = 1
    if len(hits) / WINDOW * floor > older:
        # A common fragment: only the ids that should hold about `older` matches.
        lowest = floor - int(older * WINDOW / len(hits))
    visible_hits = sum(1 for _pk, may_see in hits if may_see)
    if visible_hits and missing * WINDOW / visible_hits <= WALK_ON_ROWS:
        # The window's share of visible matches says the missing ones are near: walk on in
        # id order through about twice the ids that should hold them, and stop there.
        bottom = max(floor - min(2 * missing * WINDOW // visible_hits, WALK_ON_ROWS), lowest)
        more = list(matching.filter(pk__gte=bottom, pk__lt=floor)[:missing])
        rows += more
        floor, missing = bottom, missing - len(more)
        if not missing or floor <= lowest:
            return rows
    id_plus_0 = ExpressionWrapper(F("id") + 0, output_field=BigIntegerField())
    rest = matching.alias(id_plus_0=id_plus_0).filter(id_plus_0__lt=floor)
    if lowest > 1:
        # A plain id bound, which the index's matches are intersected with.
        rest = rest.filter(pk__gte=lowest)
    return rows + list(rest.order_by(F("id_plus_0").desc())[:missing])


def search_page(
    user,
    text: str,
    *,
    after: int | None = None,
    size: int = 50,
    within: QuerySet[Client] | None = None,
) -> KeysetPage:
    """A page of quick-search results, newest first: what a list with a search box shows.

    The same clients as keyset_page(client_search_queryset(user, text), …), found faster on
    SQLite when the user may see few of the matches. `within` narrows the clients further
    (a queryset with filters or select_related, e.g. the user's own; live ones only).
    """
    query = _read(text)
    rows = _newest_matches(user, query, after=after, count=size + 1, newest=None, within=within)
    return _page(rows, size)


def quick_search(user, text: str, *, limit: int = QUICK_LIMIT) -> list[Client]:
    """The newest `limit` visible live clients matching a quick-search text.

    Loaded are QUICK_FIELDS (what a search box shows); other fields load when read.

    The client numbered exactly as typed comes first. A quick answer, not the whole list:
    for a short text (no word of three characters) only the newest SHORT_CANDIDATES names
    starting with it are considered; for a longer one, about the newest QUICK_CANDIDATES
    matches beyond the newest ids walked first. The visible ones among them are shown: the
    newest matches, though a user who sees few of them may get fewer than `limit`
    (search_page has them all).
    """
    query = _read(text)
    newest = SHORT_CANDIDATES if query.prefix else QUICK_CANDIDATES
    found = _newest_matches(
        user, query, after=None, count=limit, newest=newest, fields=QUICK_FIELDS
    )
    number = text.strip()
    exact = next((client for client in found if client.number == number), None)
    if exact is None and query.alternatives and _MAYBE_NUMBER.fullmatch(number):
        exact = _visible_clients(user).only(*QUICK_FIELDS).filter(number=number).first()
    if exact is None:
        return found
    return [exact, *(client for client in found if client.pk != exact.pk)][:limit]


# --- Duplicates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Duplicate:
    """A live client that already has an identifier being entered."""

    client: Client
    field: str  # "email" | "phone" | "tax_id" | "national_id"
    visible: bool  # whether the user may see it; the UI links to it only then


def _duplicate_lookups(values: dict[str, str], exclude_id: int | None) -> tuple[str, list]:
    """One statement: for each identifier given, the newest live clients that have it.

    Hand-written on purpose: the check runs at each keystroke, and compiling five ORM
    queries costs more than the index seeks themselves (the target is 10 ms at p95).
    """
    client = Client._meta.db_table
    contact = Contact._meta.db_table
    phone = ContactPhone._meta.db_table
    live = "merged_into_id IS NULL AND deleted_at IS NULL"
    params_live: list = []
    if exclude_id is not None:
        live += " AND id <> %s"
        params_live = [exclude_id]
    # Each condition is the one an index answers: lower(email) is the unique index's own
    # expression; the others are plain indexed columns.
    conditions = {
        "email": ["lower(email) = lower(%s)"],
        "phone": [
            "phone = %s",
            f"id IN (SELECT c.client_id FROM {contact} c JOIN {phone} p ON p.contact_id = c.id"
            " WHERE p.number = %s)",
        ],
        "tax_id": ["tax_id = %s"],
        "national_id": ["national_id = %s"],
    }
    parts, params = [], []
    for field, value in values.items():
        for condition in conditions[field]:
            parts.append(
                f"SELECT '{field}' AS field, id FROM (SELECT id FROM {client} WHERE {condition}"
                f" AND {live} ORDER BY id DESC LIMIT {DUPLICATES_PER_FIELD:d}) AS t{len(parts)}"
            )
            params += [value, *params_live]
    return " UNION ALL ".join(parts), params


def find_duplicates(
    *,
    user,
    email: str = "",
    phone: str = "",
    tax_id: str = "",
    national_id: str = "",
    exclude_id: int | None = None,
) -> list[Duplicate]:
    """Live clients sharing an identifier with the one being entered, newest first per field.

    The values must be normalised already (E.164 phone, cleaned tax id); email is compared
    case-insensitively. Every lookup is an index seek (email by the unique lower(email)
    index, phone by the client's and the contacts' phone indexes), at most
    DUPLICATES_PER_FIELD clients per field.
    """
    given = {"email": email, "phone": phone, "tax_id": tax_id, "national_id": national_id}
    values = {field: value.strip() for field, value in given.items() if value.strip()}
    if not values:
        return []
    sql, params = _duplicate_lookups(values, exclude_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    by_field: dict[str, list[int]] = {}
    for field, pk in rows:
        by_field.setdefault(field, [])
        if pk not in by_field[field]:
            by_field[field].append(pk)
    ids = {pk for found in by_field.values() for pk in found}
    if not ids:
        return []
    # Whether the user may see each one, in the same query (core.visibility's condition).
    scope = scope_filter(Client, user)
    seen = Value(True) if scope is None else Case(When(scope, then=True), default=False)
    # The fields a warning shows; the check runs at each keystroke, and loading every
    # column of every match costs more than finding them.
    found = Client.objects.filter(pk__in=ids).only(*DUPLICATE_FIELDS)
    found = found.annotate(duplicate_visible=seen)
    clients = {client.pk: client for client in found}
    return [
        Duplicate(client=clients[pk], field=field, visible=bool(clients[pk].duplicate_visible))
        for field in values
        for pk in sorted(by_field.get(field, ()), reverse=True)[:DUPLICATES_PER_FIELD]
        if pk in clients
    ]


# --- Advanced search -------------------------------------------------------------------------

TEXT, DATE, NUMBER, CHOICE, BOOLEAN = "text", "date", "number", "choice", "boolean"
OPS = {
    TEXT: ("contains", "equals", "like", "empty", "not_empty"),
    NUMBER: ("equals", "between", "empty", "not_empty"),
    DATE: ("equals", "between", "empty", "not_empty"),
    CHOICE: ("is", "empty", "not_empty"),
    BOOLEAN: ("is", "empty", "not_empty"),
}
_YES = {"yes", "true", "1", "on"}
_NO = {"no", "false", "0", "off"}


@dataclass(frozen=True)
class SearchField:
    """A field advanced search can test: its label, type and, for a choice, the choices."""

    label: str
    type: str
    choices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Criterion:
    """One condition: a field of search_fields(), an operator and its value(s)."""

    field: str
    op: str  # contains | equals | like | between | is | empty | not_empty
    value: str = ""
    value2: str = ""


# The client's own fields, in the order a form lists them.
_CLIENT_TEXT = (
    "number",
    "name",
    "company_name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "tax_id",
    "national_id",
    "city",
    "currency",
    "tags",
    "source",
)
_CLIENT_FIELDS = (
    *_CLIENT_TEXT[:9],
    "kind",
    "status",
    "country",
    "city",
    "currency",
    "group",
    "sales_manager",
    "tags",
    "source",
    "created_at",
    "status_since",
)


def _label(name: str) -> str:
    return str(Client._meta.get_field(name).verbose_name).capitalize()


def _str_choices(choices) -> tuple[tuple[str, str], ...]:
    return tuple((str(value), str(label)) for value, label in choices)


def _client_field(name: str) -> SearchField:
    if name in _CLIENT_TEXT:
        return SearchField(_label(name), TEXT)
    if name in ("created_at", "status_since"):
        return SearchField(_label(name), DATE)
    if name == "kind":
        return SearchField(_label(name), CHOICE, _str_choices(Client.Kind.choices))
    if name == "status":
        return SearchField(_label(name), CHOICE, _str_choices(Client.Status.choices))
    if name == "country":
        return SearchField(_label(name), CHOICE, tuple((c.code, c.name) for c in countries))
    if name == "group":
        groups = ClientGroup.objects.order_by("name").values_list("pk", "name")
        return SearchField(_label(name), CHOICE, tuple((str(pk), n) for pk, n in groups))
    # sales_manager: the staff, as the client form offers them.
    from clientbase.accounts.models import User

    staff = User.objects.filter(is_active=True).order_by("first_name", "last_name", "username")
    return SearchField(
        _label(name), CHOICE, tuple((str(u.pk), u.get_full_name() or u.username) for u in staff)
    )


_CUSTOM_TYPES = {
    CustomField.Type.TEXT: TEXT,
    CustomField.Type.NUMBER: NUMBER,
    CustomField.Type.DATE: DATE,
    CustomField.Type.CHOICE: CHOICE,
    CustomField.Type.BOOLEAN: BOOLEAN,
}


def search_fields() -> dict[str, SearchField]:
    """The fields advanced search can test: the client's, then active custom ones (no secrets)."""
    found = {name: _client_field(name) for name in _CLIENT_FIELDS}
    custom = CustomField.objects.filter(applies_to=CustomField.AppliesTo.CLIENT, active=True)
    for field in custom.exclude(type=CustomField.Type.SECRET).order_by("position", "id"):
        choices = (
            tuple((c, c) for c in field.choices) if field.type == CustomField.Type.CHOICE else ()
        )
        found[f"custom.{field.code}"] = SearchField(field.label, _CUSTOM_TYPES[field.type], choices)
    return found


class _Invalid(ValueError):
    """A criterion that cannot be searched; the message says why."""


class _AsNumber(Func):
    """A custom value (stored as text) as a number; NULL when it is not one."""

    output_field = FloatField()
    arity = 1

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        # CAST of a non-number gives 0 on SQLite; only numbers may compare.
        return (
            f"(CASE WHEN trim({sql}) GLOB '*[0-9]*' AND trim({sql}) NOT GLOB '*[^0-9.+-]*'"
            f" THEN CAST({sql} AS REAL) END)",
            params * 3,
        )

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        # A cast of a non-number fails on PostgreSQL: a field whose type changed may hold one.
        return (
            f"(CASE WHEN ({sql}) ~ '^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)$'"
            f" THEN ({sql})::double precision END)",
            params * 2,
        )


def _date(text: str) -> dt.date:
    try:
        day = parse_date(text.strip())
    except ValueError:
        day = None
    if day is None:
        raise _Invalid(_("Enter a date as YYYY-MM-DD."))
    return day


def _number(text: str) -> Decimal:
    try:
        number = Decimal(text.strip().replace(" ", "").replace(",", "."))
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise _Invalid(_("Enter a number, e.g. 1250 or 12.5."))
    return number


def _bounds(criterion: Criterion, parse):
    """The (low, high) of an equals or between criterion; None where open."""
    if criterion.op == "equals":
        if not criterion.value.strip():
            raise _Invalid(_("Enter a value."))
        value = parse(criterion.value)
        return value, value
    low = parse(criterion.value) if criterion.value.strip() else None
    high = parse(criterion.value2) if criterion.value2.strip() else None
    if low is None and high is None:
        raise _Invalid(_("Enter a start, an end, or both."))
    if low is not None and high is not None and low > high:
        raise _Invalid(_("The start is after the end."))
    return low, high


def _choice(field: SearchField, value: str) -> str:
    wanted = value.strip().casefold()
    for key, _label_text in field.choices:
        if key.casefold() == wanted:
            return key
    raise _Invalid(_("Choose one of the offered values."))


def _yes_no(value: str) -> bool:
    text = value.strip().casefold()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise _Invalid(_("Answer yes or no."))


def _text_condition(target: str, op: str, value: str) -> Q:
    """contains / equals / like on a text column or alias."""
    if not value.strip():
        raise _Invalid(_("Enter a value."))
    value = value.strip()
    if op == "contains":
        return Q(**{f"{target}__icontains": value})
    if op == "equals":
        return Q(**{f"{target}__iexact": value})
    pattern = value.replace("\\", "\\\\").replace("_", "\\_")
    return Q(Like(F(target), Value(pattern)))


def _phone_contains(value: str) -> Q | None:
    """A phone fragment typed as the clerk reads it ("8 916 123-45"), matched by digits."""
    variants = _digit_variants(value.strip())
    if not variants:
        return None
    condition = Q(pk__in=[])
    for digits in variants:
        condition |= Q(phone__contains=digits)
    return condition


def _client_condition(name: str, field: SearchField, criterion: Criterion) -> Q:
    op = criterion.op
    column = {"group": "group_id", "sales_manager": "sales_manager_id"}.get(name, name)
    if op in ("empty", "not_empty"):
        if name in ("group", "sales_manager", "status_since"):
            empty = Q(**{f"{column}__isnull": True})
        elif name == "created_at":
            empty = Q(pk__in=[])  # always set
        else:
            empty = Q(**{column: ""})
        return empty if op == "empty" else ~empty
    if field.type == TEXT:
        if name == "phone" and op == "contains":
            by_digits = _phone_contains(criterion.value)
            if by_digits is not None:
                return by_digits
        return _text_condition(name, op, criterion.value)
    if field.type == CHOICE:
        return Q(**{column: _choice(field, criterion.value)})
    # Dates: created_at is an instant, compared with the company day's bounds.
    low, high = _bounds(criterion, _date)
    condition = Q()
    if name == "created_at":
        if low is not None:
            condition &= Q(created_at__gte=clock.start_of_day(low))
        if high is not None:
            condition &= Q(created_at__lt=clock.start_of_day(high + dt.timedelta(days=1)))
        return condition
    if low is not None:
        condition &= Q(**{f"{name}__gte": low})
    if high is not None:
        condition &= Q(**{f"{name}__lte": high})
    return condition


def _custom_condition(
    code: str, field: SearchField, criterion: Criterion, alias: str, aliases: dict
) -> Q:
    op = criterion.op
    if op in ("empty", "not_empty"):
        present = Q(custom__has_key=code)
        return ~present if op == "empty" else present
    if field.type == BOOLEAN:
        aliases[alias] = KeyTransform(code, "custom")
        return Q(**{alias: _yes_no(criterion.value)})
    # As plain text: a key transform would read the value given to compare with as JSON.
    aliases[alias] = Cast(KeyTextTransform(code, "custom"), TextField())
    if field.type == TEXT:
        return _text_condition(alias, op, criterion.value)
    if field.type == CHOICE:
        return Q(**{alias: _choice(field, criterion.value)})
    if field.type == DATE:
        # ISO dates compare right as text.
        low, high = _bounds(criterion, _date)
        low, high = (d.isoformat() if d is not None else None for d in (low, high))
    else:
        low, high = _bounds(criterion, _number)
        aliases[alias] = _AsNumber(KeyTextTransform(code, "custom"))
        low, high = (float(n) if n is not None else None for n in (low, high))
    condition = Q(**{f"{alias}__isnull": False})
    if low is not None:
        condition &= Q(**{f"{alias}__gte": low})
    if high is not None:
        condition &= Q(**{f"{alias}__lte": high})
    return condition


def advanced_search(user, criteria: list[Criterion], *, match: str = "all") -> QuerySet[Client]:
    """Visible live clients meeting all (match="all") or any (match="any") criteria, newest first.

    Bad criteria raise ServiceError with a message keyed "criteria.<index>".
    """
    if match not in ("all", "any"):
        raise ServiceError(_('Match "all" or "any" of the criteria.'), field="match")
    fields = search_fields()
    errors: dict[str, list[str]] = {}
    conditions: list[Q] = []
    aliases: dict = {}
    for index, criterion in enumerate(criteria):
        field = fields.get(criterion.field)
        try:
            if field is None:
                raise _Invalid(
                    _("There is no field %(field)s to search.") % {"field": criterion.field}
                )
            if criterion.op not in OPS[field.type]:
                raise _Invalid(
                    _("This field cannot be searched with %(op)s.") % {"op": criterion.op}
                )
            if criterion.field.startswith("custom."):
                code = criterion.field.removeprefix("custom.")
                condition = _custom_condition(code, field, criterion, f"custom_{index}", aliases)
            else:
                condition = _client_condition(criterion.field, field, criterion)
        except _Invalid as refused:
            errors[f"criteria.{index}"] = [str(refused)]
            continue
        conditions.append(condition)
    if errors:
        raise ServiceError(errors=errors)
    found = _visible_clients(user)
    if aliases:
        found = found.alias(**aliases)
    if conditions:
        combined = conditions[0]
        for condition in conditions[1:]:
            combined = combined & condition if match == "all" else combined | condition
        found = found.filter(combined)
    return found.order_by("-id")


# --- The index itself ------------------------------------------------------------------------


def _sqlite_document(row: str) -> str:
    return " || char(10) || ".join(f"{row}.{column}" for column in DOCUMENT_COLUMNS)


def sqlite_trigger_statements() -> list[str]:
    """The triggers that keep the FTS5 table in step with clients_client (as migration 0008)."""
    insert = (
        f"INSERT INTO {SQLITE_TABLE}(rowid, document) VALUES (new.id, {_sqlite_document('new')});"
    )
    # A contentless table forgets a row only when given the very text it indexed.
    delete = (
        f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, document) "
        f"VALUES ('delete', old.id, {_sqlite_document('old')});"
    )
    watched = ", ".join(DOCUMENT_COLUMNS)
    return [
        f"CREATE TRIGGER {SQLITE_TRIGGERS[0]} AFTER INSERT ON clients_client BEGIN {insert} END",
        f"CREATE TRIGGER {SQLITE_TRIGGERS[1]} AFTER DELETE ON clients_client BEGIN {delete} END",
        f"CREATE TRIGGER {SQLITE_TRIGGERS[2]} AFTER UPDATE OF {watched} ON clients_client "
        f"BEGIN {delete} {insert} END",
    ]


def pg_document_sql() -> str:
    """The document as PostgreSQL SQL over the bare columns, as the index has it."""
    return _pg_joined("(" + " || E'\\n' || ".join(f'"{c}"' for c in DOCUMENT_COLUMNS) + ")")


def pg_index_statement() -> str:
    """The GIN trigram index on the document (as migration 0008)."""
    document = pg_document_sql()
    return (
        f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON clients_client "
        f"USING gin ({document} gin_trgm_ops)"
    )


def pg_statistics_statement() -> str:
    """The statistics sample of the index's expression (as migration 0014)."""
    return f"ALTER INDEX {PG_INDEX} ALTER COLUMN 1 SET STATISTICS {PG_STATISTICS:d}"


def ensure_search_index(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Put the search index back where a later migration dropped it; True if it had to.

    On SQLite, Django rebuilds clients_client for most column changes (new table, copy,
    drop, rename), and the old table's triggers go with it; on PostgreSQL, dropping a
    searched column drops the index. Run after every migrate (search_index_post_migrate).
    """
    db = connections[using]
    if ("clients", "0008_search_index") not in MigrationRecorder(db).applied_migrations():
        return False
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [PG_INDEX])
            found = cursor.fetchone()
            # An index from before punctuation was joined (see PG_JOINED) is built again.
            if found is not None and "replace(" in found[0]:
                return False
            cursor.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            cursor.execute(pg_index_statement())
            cursor.execute(pg_statistics_statement())
            return True
        if db.vendor != "sqlite":
            return False
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        if set(SQLITE_TRIGGERS) <= {row[0] for row in cursor.fetchall()}:
            return False
        with transaction.atomic(using=using):
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
            for statement in sqlite_trigger_statements():
                cursor.execute(statement)
            # Rows may have changed while the triggers were gone: index every one again.
            cursor.execute(f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}) VALUES ('delete-all')")
            cursor.execute(
                f"INSERT INTO {SQLITE_TABLE}(rowid, document) "
                f"SELECT id, {_sqlite_document('clients_client')} FROM clients_client"
            )
        return True


@contextlib.contextmanager
def search_index_in_one_statement(using: str = DEFAULT_DB_ALIAS):
    """Clients inserted in the block are indexed by one statement at its end, not a trigger each.

    On SQLite the insert trigger costs more than the rest of a bulk insert (about 5,000 rows/s
    with it, 10,000 without): it is dropped for the block and created again after, inside the
    caller's transaction, so no other connection ever sees it gone (SQLite's DDL is
    transactional, and the writer lock is held). Rows inserted in the block must not be
    changed or deleted in it. Elsewhere this does nothing: PostgreSQL's index is kept by the
    insert itself.
    """
    db = connections[using]
    if db.vendor != "sqlite":
        yield
        return
    if not db.in_atomic_block:
        raise RuntimeError("the search index is swapped inside the transaction of the insert")
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = %s",
            [SQLITE_TRIGGERS[0]],
        )
        trigger = cursor.fetchone()
        if trigger is None:
            # The index is suspended (search_index_suspended): it is rebuilt whole later.
            yield
            return
        # Every row inserted in the block gets a greater id (AUTOINCREMENT, one writer).
        cursor.execute("SELECT MAX(id) FROM clients_client")
        (last,) = cursor.fetchone()
        cursor.execute(f"DROP TRIGGER {SQLITE_TRIGGERS[0]}")
    try:
        yield
        with db.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {SQLITE_TABLE}(rowid, document) "
                f"SELECT id, {_sqlite_document('clients_client')} FROM clients_client "
                "WHERE id > %s",
                [last or 0],
            )
    finally:
        with db.cursor() as cursor:
            cursor.execute(trigger[0])


@contextlib.contextmanager
def search_index_suspended(using: str = DEFAULT_DB_ALIAS):
    """Load many clients without keeping the search index in step row by row; rebuilt after.

    Keeping the index row by row makes a million-client load several times slower (FTS5
    segments on SQLite, GIN entries on PostgreSQL); building it once at the end is far
    cheaper. Meanwhile quick search misses the new rows and, on PostgreSQL, is slow: for
    the demo generator and big imports run alone, not for everyday writes.
    """
    db = connections[using]
    with db.cursor() as cursor:
        if db.vendor == "sqlite":
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        elif db.vendor == "postgresql":
            cursor.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
    try:
        yield
    finally:
        ensure_search_index(using)


def search_index_post_migrate(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate receiver for the clients app: see ensure_search_index."""
    ensure_search_index(using)
