"""Realistic demo clients in four languages, generated fast enough for a million."""

import contextlib
import datetime as dt
import functools
import random
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from faker import Faker

# The services module registers the client number series and the "client.created" event.
import clientbase.clients.services  # noqa: F401
from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.demo import DEMO_USERS, DemoOrg
from clientbase.core.events import EVENT_TYPES
from clientbase.core.models import Event
from clientbase.core.numbering import DocumentNumber, reserve_numbers

CLIENT_SERIES = "client"
DEFAULT_SEED = 2024
# Clients per transaction: larger batches touch each index page fewer times per row.
BATCH_SIZE = 20_000
# SQLite page cache for the run, in KiB: the random email, name and tax-id index pages of a
# million clients stay in memory instead of being read back from the file at each batch.
SQLITE_CACHE_KIB = 256 * 1024
# Numbers per lookup of the new ids: well under the bound parameters SQLite and PostgreSQL take.
LOOKUP_ROWS = 5_000
HISTORY = dt.timedelta(days=730)
POOL_SIZE = 1_500
PHONE_POOL_SIZE = 1_000


@dataclass(frozen=True)
class Market:
    """A country the demo company sells in: its language, currency and Faker locale."""

    country: str
    language: str
    currency: str
    locale: str
    weight: int


MARKETS = (
    Market("RU", "ru", "RUB", "ru_RU", 25),
    Market("FR", "fr", "EUR", "fr_FR", 25),
    Market("VN", "vi", "VND", "vi_VN", 25),
    Market("US", "en", "USD", "en_US", 15),
    Market("GB", "en", "GBP", "en_GB", 10),
)

# National numbers that the numbering plans give to mobiles and big-city landlines; each
# candidate is still checked with `phonenumbers` before it enters the pool.
PHONE_PATTERNS = {
    "RU": (7, (("9", 9), ("495", 7), ("812", 7))),
    "FR": (33, (("6", 8), ("7", 8), ("1", 8), ("4", 8))),
    "VN": (84, (("9", 8), ("3", 8), ("8", 8), ("28", 8), ("24", 8))),
    "US": (1, (("2", 9), ("3", 9), ("4", 9), ("5", 9), ("6", 9), ("7", 9), ("8", 9), ("9", 9))),
    "GB": (44, (("7", 9), ("20", 8), ("161", 7))),
}

# IRS campus prefixes of employer identification numbers.
EIN_PREFIXES = ("10", "12", "20", "27", "30", "46", "47", "54", "81", "82", "84", "94")

COMPANY_MAILBOXES = ("info", "office", "contact", "billing", "hello", "accounts")
PERSONAL_DOMAINS = ("example.com", "example.net", "example.org")
VI_MIDDLE = {"m": ("Văn", "Đức", "Minh", "Quang", "Hữu"), "f": ("Thị", "Ngọc", "Thu", "Mai")}
# Plain strings, not the enum: rows go to the database driver as they are.
STATUS_SHARES = {
    Client.Status.ACTIVE.value: 85,
    Client.Status.INACTIVE.value: 10,
    Client.Status.CLOSED.value: 5,
}
COMPANY_SHARE = 0.4

# Russian letters in Latin, much as passports spell them; the hard and soft signs drop.
CYRILLIC = {
    **str.maketrans("абвгдеёзийклмнопрстуфыэ", "abvgdeeziiklmnoprstufye", "ъь"),
    **str.maketrans(
        {"ж": "zh", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ю": "iu", "я": "ia"}
    ),
}


def _slug(text: str, sep: str = ".") -> str:
    """ASCII letters for a mail address: Cyrillic spelt out, accents and marks dropped."""
    text = text.lower().replace("đ", "d")
    text = text.translate(CYRILLIC)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", sep, text).strip(sep)


@dataclass(frozen=True)
class Pools:
    """Names, companies, addresses and phones of one market, drawn once from Faker."""

    firsts: dict[str, list[tuple[str, str]]]  # by gender "m"/"f": (name, slug)
    lasts: dict[str, list[tuple[str, str]]]
    middles: dict[str, list[str]]
    companies: list[tuple[str, str]]
    streets: list[str]
    cities: list[str]
    postcodes: list[str]
    phones: list[str]


def _distinct(draw: Callable[[], str], count: int) -> list[str]:
    # Faker repeats itself; keep each value once, in first-seen order for reproducibility.
    return list(dict.fromkeys(draw() for _ in range(count)))


def _phones(country: str, rng: random.Random, count: int) -> list[str]:
    country_code, prefixes = PHONE_PATTERNS[country]
    phones: list[str] = []
    for _ in range(count * 20):
        prefix, digits = rng.choice(prefixes)
        number = phonenumbers.PhoneNumber(
            country_code=country_code, national_number=int(prefix + _digits(rng, digits))
        )
        if phonenumbers.is_valid_number_for_region(number, country):
            phones.append(f"+{country_code}{number.national_number}")
            if len(phones) == count:
                break
    return phones


def _market_pools(market: Market, seed: int) -> Pools:
    fake = Faker(market.locale)
    fake.seed_instance(f"{seed}-{market.locale}")
    rng = random.Random(f"{seed}-{market.country}-phones")
    firsts = {
        "m": _distinct(fake.first_name_male, 400),
        "f": _distinct(fake.first_name_female, 400),
    }
    lasts = {"m": _distinct(fake.last_name_male, 800), "f": _distinct(fake.last_name_female, 800)}
    if market.locale == "ru_RU":
        middles = {
            "m": _distinct(fake.middle_name_male, 400),
            "f": _distinct(fake.middle_name_female, 400),
        }
    elif market.locale == "vi_VN":
        middles = {gender: list(names) for gender, names in VI_MIDDLE.items()}
    else:
        middles = {"m": [], "f": []}
    if market.country == "US":
        cities = _distinct(lambda: f"{fake.city()}, {fake.state_abbr()}", 600)
    else:
        cities = _distinct(fake.city, 600)
    companies = _distinct(fake.company, POOL_SIZE)
    return Pools(
        firsts={g: [(n, _slug(n)) for n in names if _slug(n)] for g, names in firsts.items()},
        lasts={g: [(n, _slug(n)) for n in names if _slug(n)] for g, names in lasts.items()},
        middles=middles,
        companies=[(name, _slug(name, "-")[:40].strip("-") or "company") for name in companies],
        streets=_distinct(fake.street_address, POOL_SIZE),
        cities=cities,
        postcodes=_distinct(fake.postcode, POOL_SIZE),
        phones=_phones(market.country, rng, PHONE_POOL_SIZE),
    )


@functools.lru_cache(maxsize=2)
def _pools(seed: int) -> dict[str, Pools]:
    return {market.country: _market_pools(market, seed) for market in MARKETS}


def demo_pools(seed: int = DEFAULT_SEED) -> dict[str, Pools]:
    """Every market's pools, by country; built once per process (Faker is slow per call)."""
    return _pools(seed)


# --- Tax ids, valid for their country (checked with python-stdnum in the tests) -----------


def _digits(rng: random.Random, count: int) -> str:
    return f"{rng.randrange(10**count):0{count}d}"


def _weighted(digits: str, weights: tuple[int, ...]) -> int:
    return sum(w * int(d) for w, d in zip(weights, digits, strict=False))


def ru_inn(rng: random.Random, *, company: bool) -> str:
    """A Russian INN: 10 digits for an organisation, 12 for a person."""
    region = f"{rng.randint(1, 92):02d}"
    if company:
        body = region + _digits(rng, 7)
        return body + str(_weighted(body, (2, 4, 10, 3, 5, 9, 4, 6, 8)) % 11 % 10)
    body = region + _digits(rng, 8)
    first = str(_weighted(body, (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)) % 11 % 10)
    body += first
    return body + str(_weighted(body, (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)) % 11 % 10)


def _luhn_digit(body: str) -> str:
    total = 0
    # Counted from the right, the body's last digit is doubled: the check digit comes after.
    for position, digit in enumerate(reversed(body)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


def fr_vat(rng: random.Random) -> str:
    """A French VAT number: FR, a two-digit key, then a SIREN with its Luhn digit."""
    body = str(rng.randint(1, 9)) + _digits(rng, 7)
    siren = body + _luhn_digit(body)
    return f"FR{(int(siren) * 100 + 12) % 97:02d}{siren}"


def fr_nif(rng: random.Random) -> str:
    """A French personal tax number (numéro fiscal): 13 digits, the last three a key."""
    body = str(rng.randint(0, 3)) + _digits(rng, 9)
    return f"{body}{int(body) % 511:03d}"


def vn_mst(rng: random.Random) -> str:
    """A Vietnamese tax code (mã số thuế): province, serial and check digit."""
    while True:
        body = f"{rng.randint(1, 99):02d}" + f"{rng.randint(1, 9_999_999):07d}"
        remainder = _weighted(body, (31, 29, 23, 19, 17, 13, 7, 5, 3)) % 11
        # A remainder of 0 would need the check digit 10: such serials are never issued.
        if remainder:
            return body + str(10 - remainder)


def us_ein(rng: random.Random) -> str:
    """A US employer identification number, NN-NNNNNNN, with a prefix the IRS assigns."""
    return f"{rng.choice(EIN_PREFIXES)}-{_digits(rng, 7)}"


def gb_vat(rng: random.Random) -> str:
    """A UK VAT number: GB and nine digits whose weighted sum is 55 modulo 97."""
    body = str(rng.randint(1, 9)) + _digits(rng, 6)
    return f"GB{body}{(55 - _weighted(body, (8, 7, 6, 5, 4, 3, 2))) % 97:02d}"


def demo_tax_id(rng: random.Random, country: str, *, company: bool) -> str:
    """A valid tax id for the country; consumers in the US and the UK are asked for none."""
    if country == "RU":
        return ru_inn(rng, company=company)
    if country == "FR":
        return fr_vat(rng) if company else fr_nif(rng)
    if country == "VN":
        return vn_mst(rng)
    if not company:
        return ""
    return us_ein(rng) if country == "US" else gb_vat(rng)


# --- Clients -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoClientsResult:
    """What a run did: clients created now, clients in the base after, seconds taken."""

    created: int
    total: int
    seconds: float


# Columns the generator fills, in row order; any other column gets its model default.
CLIENT_FIELDS = (
    "number",
    "kind",
    "name",
    "email",
    "phone",
    "tax_id",
    "street",
    "postcode",
    "city",
    "country",
    "currency",
    "language",
    "owner",
    "org_unit",
    "status",
    "created_at",
)
EVENT_FIELDS = (
    "occurred_at",
    "actor",
    "client",
    "org_unit",
    "owner",
    "category",
    "type",
    "reference",
    "subject_type",
    "subject_id",
    "details",
)


def _insert(model: type[models.Model], fields: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert rows of database-ready values: one prepared statement, or COPY on PostgreSQL.

    `bulk_create` prepares every field of every object through the ORM, which costs more
    than the database takes to store the row; demo rows are built ready to store instead.
    """
    meta = model._meta
    named = [meta.get_field(name) for name in fields]
    rest = [f for f in meta.concrete_fields if not f.primary_key and f not in named]
    defaults = tuple(f.get_db_prep_save(f.get_default(), connection) for f in rest)
    if defaults:
        rows = [row + defaults for row in rows]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = ", ".join(quote(f.column) for f in named + rest)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY streams the rows in one go; INSERT pays a round of the protocol per row.
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * (len(named) + len(rest)))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


@contextlib.contextmanager
def roomy_sqlite_cache(kib: int = SQLITE_CACHE_KIB):
    """A larger page cache (`kib`) on this connection while the batches run, then the old size."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (before,) = cursor.fetchone()
        cursor.execute(f"PRAGMA cache_size = {-kib:d}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(before):d}")


class _Generator:
    """Combines pool entries at random into client rows; seeded, so runs repeat."""

    def __init__(self, *, org: DemoOrg, pools: dict[str, Pools], rng: random.Random):
        self.rng = rng
        self.pools = pools
        sales = [org.users[row[0]] for row in DEMO_USERS if row[3] == "sales"]
        # Clients go to a seller who speaks their language when there is one.
        self.owners = {
            market.country: [(u.pk, u.org_unit_id) for u in sales if u.language == market.language]
            or [(u.pk, u.org_unit_id) for u in sales]
            for market in MARKETS
        }
        self.markets = list(MARKETS)
        self.market_weights = [market.weight for market in MARKETS]

    def person(self, market: Market, pools: Pools) -> tuple[str, str]:
        """A name in the market's order, and its ASCII form for the mail address."""
        rng = self.rng
        gender = "m" if rng.random() < 0.5 else "f"
        first, first_slug = rng.choice(pools.firsts[gender])
        last, last_slug = rng.choice(pools.lasts[gender])
        if market.country == "RU":
            name = f"{last} {first} {rng.choice(pools.middles[gender])}"
        elif market.country == "VN":
            name = f"{last} {rng.choice(pools.middles[gender])} {first}"
        else:
            name = f"{first} {last}"
        return name, f"{first_slug}.{last_slug}"

    def clients(self, numbers: list[DocumentNumber], times: list) -> list[tuple]:
        """Rows of CLIENT_FIELDS, one per number, created at the given instants."""
        rng = self.rng
        count = len(numbers)
        markets = rng.choices(self.markets, self.market_weights, k=count)
        statuses = rng.choices(list(STATUS_SHARES), list(STATUS_SHARES.values()), k=count)
        adapt_time = connection.ops.adapt_datetimefield_value
        rows = []
        for market, status, number, created_at in zip(
            markets, statuses, numbers, times, strict=True
        ):
            value = number.value
            pools = self.pools[market.country]
            company = rng.random() < COMPANY_SHARE
            if company:
                name, domain = rng.choice(pools.companies)
                email = f"{rng.choice(COMPANY_MAILBOXES)}.{value}@{domain}.example"
            else:
                name, local = self.person(market, pools)
                email = f"{local}.{value}@{rng.choice(PERSONAL_DOMAINS)}"
            owner_id, org_unit_id = rng.choice(self.owners[market.country])
            rows.append(
                (
                    number.text,
                    "company" if company else "individual",
                    name,
                    email,
                    rng.choice(pools.phones),
                    demo_tax_id(rng, market.country, company=company),
                    rng.choice(pools.streets),
                    rng.choice(pools.postcodes),
                    rng.choice(pools.cities),
                    market.country,
                    market.currency,
                    market.language,
                    owner_id,
                    org_unit_id,
                    status,
                    adapt_time(created_at),
                )
            )
        return rows


def _ids(rows: list[tuple]) -> dict[str, int]:
    """The ids the database gave the client rows just inserted, by number."""
    numbers = [row[0] for row in rows]
    ids: dict[str, int] = {}
    for at in range(0, len(numbers), LOOKUP_ROWS):
        chunk = numbers[at : at + LOOKUP_ROWS]
        ids.update(Client.objects.filter(number__in=chunk).values_list("number", "pk"))
    return ids


def _created_events(rows: list[tuple], ids: dict[str, int]) -> list[tuple]:
    """Rows of EVENT_FIELDS: one "client.created" line per client row, as the owner's act."""
    category = EVENT_TYPES["client.created"].category.value
    client_type = ContentType.objects.get_for_model(Client).pk
    adapt_json = connection.ops.adapt_json_value
    events = []
    for number, _kind, name, *_, owner_id, org_unit_id, _status, created_at in rows:
        client_id = ids[number]
        events.append(
            (
                created_at,
                owner_id,
                client_id,
                org_unit_id,
                owner_id,
                category,
                "client.created",
                number,
                client_type,
                str(client_id),
                adapt_json({"name": name}, DjangoJSONEncoder),
            )
        )
    return events


def demo_clients_create(
    *,
    clients: int,
    org: DemoOrg,
    seed: int = DEFAULT_SEED,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> DemoClientsResult:
    """Add the demo clients missing to reach `clients` in all, with their newsfeed events.

    Each batch is one transaction that reserves a block of client numbers, so numbers stay
    gapless beside those `client_create` takes one at a time.
    """
    started = time.perf_counter()
    existing = Client.objects.count()
    missing = max(clients - existing, 0)
    if missing:
        generator = _Generator(
            org=org, pools=demo_pools(seed), rng=random.Random(f"{seed}-{existing}")
        )
        # Spread over the last two years in number order, as a real base grows.
        end = clock.now()
        step = HISTORY / missing
        start = end - HISTORY
        done = 0
        with roomy_sqlite_cache():
            while done < missing:
                count = min(batch_size, missing - done)
                times = [start + step * (done + i + generator.rng.random()) for i in range(count)]
                with transaction.atomic():
                    numbers = reserve_numbers(CLIENT_SERIES, count)
                    rows = generator.clients(numbers, times)
                    _insert(Client, CLIENT_FIELDS, rows)
                    _insert(Event, EVENT_FIELDS, _created_events(rows, _ids(rows)))
                done += count
                if progress is not None:
                    progress(done, missing)
    return DemoClientsResult(
        created=missing, total=existing + missing, seconds=time.perf_counter() - started
    )
