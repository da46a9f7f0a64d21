"""Client search (PLT-4) and duplicate detection (CUS-3), fast at a million clients.

Quick search looks for a fragment in each client's document: number, name, company name,
email, phone, tax id, national id and the searchable custom field values (`custom_search`),
a newline apart. A trigram index answers it: an FTS5 table on SQLite, a pg_trgm GIN index on
PostgreSQL (migration 0008_search_index). Matching is by substring, case-insensitive (accents
count: "elo" does not find "Élodie").

- Each word of 3 characters or more must occur somewhere in the document; shorter words
  among them are left out (a trigram index cannot look them up).
- A query of digits and phone signs (`+ - ( ) . /`, spaces) also matches its bare digits,
  and without a leading national prefix 8 or 0: "8 916 123-45" finds +79161234567.
- A query with no word of 3 characters (e.g. "Iv") finds the clients whose number is
  exactly that, or whose name starts with it; both are indexed, so it stays fast.

Everything goes through `core.visibility`; merged and deleted clients are never found.
"""

import datetime as dt
import functools
import operator
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    Subquery,
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
SHORT_CANDIDATES = 1000
# Matches shown per identifier: enough to warn, not a list of every family sharing a phone.
DUPLICATES_PER_FIELD = 10

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
# The FTS rowid a SQLite search selects and orders by; keyset_page pages by it.
SEARCH_ROWID = "search_rowid"
# The alias of the document a PostgreSQL search filters on; keyset_page looks for it.
SEARCH_DOCUMENT = "search_document"
# Newest clients a PostgreSQL search reads in id order before it turns to the index.
WINDOW = 5000

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
    words = tuple(dict.fromkeys(w.lower() for w in text.split() if len(w) >= MIN_FRAGMENT))
    if words:
        alternatives.append(words)
    for digits in _digit_variants(text):
        alternatives.append((digits,))
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
        return self.as_sql(compiler, connection, arg_joiner=" || E'\\n' || ", **extra)


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


def _document_condition(query: _Query) -> Q:
    """The trigram-indexed condition on PostgreSQL: ILIKE '%word%' on the document."""
    document = F(SEARCH_DOCUMENT)
    return functools.reduce(
        operator.or_,
        (
            functools.reduce(
                operator.and_,
                (Q(Like(document, Value(f"%{_escape_like(word)}%"))) for word in words),
            )
            for words in query.alternatives
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
        # id + 0: sorted from the name range, not found by walking every id backwards.
        bound = f" ORDER BY id + 0 DESC LIMIT {newest:d}" if newest else ""
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


def quick_search(user, text: str, *, limit: int = QUICK_LIMIT) -> list[Client]:
    """The newest `limit` visible live clients matching a quick-search text.

    The client numbered exactly as typed comes first. For a short text (no word of three
    characters) only the newest SHORT_CANDIDATES names starting with it are considered, of
    which the visible ones are shown: the newest matches, though a user who sees few
    clients may get fewer than `limit`.
    """
    query = _read(text)
    matching = _matching(_visible_clients(user), query, newest=SHORT_CANDIDATES)
    found = keyset_page(matching, after=None, size=limit).items
    number = text.strip()
    exact = next((client for client in found if client.number == number), None)
    if exact is None and query.alternatives and _MAYBE_NUMBER.fullmatch(number):
        exact = _visible_clients(user).filter(number=number).first()
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
    found = Client.objects.filter(pk__in=ids).annotate(duplicate_visible=seen)
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


# --- Keyset pages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeysetPage:
    """One page of a list newest first, and where the next one starts (None: the last page)."""

    items: list
    next_after: int | None


def _pg_newest(queryset: QuerySet, *, after: int | None, count: int) -> list:
    """The newest `count` rows of a PostgreSQL trigram search, in at most two queries.

    Walking ids backwards finds a common fragment at once but reads the whole table for a
    rare one; the trigram index finds a rare one at once but fetches every row of a common
    one. The planner's guess between them is often wrong by a wide margin (the filter on
    the whole document costs microseconds a row, far more than it assumes), so: first the
    newest WINDOW ids backwards, a bounded read; only if they hold too few matches, the
    rest through the index, ordered by `id + 0` so that the id order cannot be walked.
    """
    newest = queryset.order_by("-id")
    if after is not None:
        newest = newest.filter(pk__lt=after)
        top = Value(after)
    else:
        top = Subquery(Client.everything.order_by("-id").values("id")[:1]) + 1
    floor = ExpressionWrapper(top - WINDOW, output_field=BigIntegerField())
    rows = list(newest.filter(pk__gte=floor)[:count])
    if len(rows) < count:
        rest = newest.filter(pk__lt=floor).order_by((F("id") + 0).desc())
        rows += list(rest[: count - len(rows)])
    return rows


def keyset_page(queryset: QuerySet, *, after: int | None, size: int = 50) -> KeysetPage:
    """The `size` rows after id `after` (None: the first page), by -id; never counts the rows."""
    if SEARCH_ROWID in queryset.query.extra_select:
        # A SQLite quick search: page by the FTS rowid (the same id) so SQLite keeps walking
        # the index newest first from `after` (see _fts_matching).
        page = queryset.order_by(f"-{SEARCH_ROWID}")
        if after is not None:
            page = page.extra(where=[f"{SQLITE_TABLE}.rowid < %s"], params=[after])
        rows = list(page[: size + 1])
    elif SEARCH_DOCUMENT in queryset.query.annotations:
        rows = _pg_newest(queryset, after=after, count=size + 1)
    else:
        page = queryset.order_by("-id")
        if after is not None:
            page = page.filter(pk__lt=after)
        rows = list(page[: size + 1])
    items = rows[:size]
    return KeysetPage(items=items, next_after=items[-1].pk if len(rows) > size else None)
