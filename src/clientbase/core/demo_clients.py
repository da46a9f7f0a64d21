"""Realistic demo clients in four languages, generated fast enough for a million."""

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
from django.db import transaction
from faker import Faker

# The services module registers the client number series and the "client.created" event.
import clientbase.clients.services  # noqa: F401
from clientbase.clients.models import Client
from clientbase.core import clock
from clientbase.core.demo import DEMO_USERS, DemoOrg
from clientbase.core.events import EVENT_TYPES
from clientbase.core.models import Event, NumberSeries
from clientbase.core.numbering import SERIES_DEFAULTS

CLIENT_SERIES = "client"
DEFAULT_SEED = 2024
BATCH_SIZE = 5_000
# Rows per INSERT statement: well under PostgreSQL's 65,535 parameters; SQLite caps it lower.
INSERT_ROWS = 1_000
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
STATUSES = (Client.Status.ACTIVE, Client.Status.INACTIVE, Client.Status.CLOSED)
STATUS_WEIGHTS = (85, 10, 5)
COMPANY_SHARE = 0.4

# Russian letters spelt in Latin (ICAO style, as on passports); the hard and soft signs drop.
CYRILLIC = {
    **str.maketrans("абвгдеёзийклмнопрстуфыэ", "abvgdeeziiklmnoprstufye", "ъь"),
    **str.maketrans(
        {"ж": "zh", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ю": "iu", "я": "ia"}  # noqa: RUF001
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
        if phonenumbers.is_valid_number(number):
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
        firsts={g: [(n, _slug(n)) for n in names] for g, names in firsts.items()},
        lasts={g: [(n, _slug(n)) for n in names] for g, names in lasts.items()},
        middles=middles,
        companies=[(name, _slug(name, "-")[:40].strip("-") or "company") for name in companies],
        streets=_distinct(fake.street_address, POOL_SIZE),
        cities=cities,
        postcodes=_distinct(fake.postcode, POOL_SIZE),
        phones=_phones(market.country, rng, PHONE_POOL_SIZE),
    )


@functools.lru_cache(maxsize=2)
def demo_pools(seed: int = DEFAULT_SEED) -> dict[str, Pools]:
    """Every market's pools, by country; built once per process (Faker is slow per call)."""
    return {market.country: _market_pools(market, seed) for market in MARKETS}


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
    # Doubling starts at the digit right of which the check digit will stand.
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


def _reserve_numbers(count: int) -> tuple[NumberSeries, int]:
    """Lock the client series and take `count` numbers in one update; returns the first."""
    series = NumberSeries.objects.select_for_update().filter(key=CLIENT_SERIES).first()
    if series is None:
        NumberSeries.objects.get_or_create(
            key=CLIENT_SERIES, defaults=SERIES_DEFAULTS.get(CLIENT_SERIES, {})
        )
        series = NumberSeries.objects.select_for_update().get(key=CLIENT_SERIES)
    first = series.next_value
    NumberSeries.objects.filter(pk=series.pk).update(next_value=first + count)
    return series, first


class _Generator:
    """Combines pool entries at random into client rows; seeded, so runs repeat."""

    def __init__(self, *, org: DemoOrg, pools: dict[str, Pools], rng: random.Random):
        self.rng = rng
        self.pools = pools
        sales = [org.users[row[0]] for row in DEMO_USERS if row[3] == "sales"]
        # Clients go to a seller who speaks their language when there is one.
        self.owners = {
            market.country: [u for u in sales if u.language == market.language] or sales
            for market in MARKETS
        }
        self.markets = list(MARKETS)
        self.market_weights = [market.weight for market in MARKETS]

    def person(self, market: Market, pools: Pools) -> tuple[str, str]:
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

    def clients(self, count: int, numbers: range, series: NumberSeries, times: list):
        rng = self.rng
        markets = rng.choices(self.markets, self.market_weights, k=count)
        statuses = rng.choices(STATUSES, STATUS_WEIGHTS, k=count)
        rows = []
        for market, status, value, created_at in zip(
            markets, statuses, numbers, times, strict=True
        ):
            pools = self.pools[market.country]
            company = rng.random() < COMPANY_SHARE
            if company:
                name, domain = rng.choice(pools.companies)
                email = f"{rng.choice(COMPANY_MAILBOXES)}.{value}@{domain}.example"
            else:
                name, local = self.person(market, pools)
                email = f"{local}.{value}@{rng.choice(PERSONAL_DOMAINS)}"
            owner = rng.choice(self.owners[market.country])
            rows.append(
                Client(
                    number=f"{series.prefix}{value:0{series.padding}d}",
                    kind=Client.Kind.COMPANY if company else Client.Kind.INDIVIDUAL,
                    name=name,
                    email=email,
                    phone=rng.choice(pools.phones),
                    tax_id=demo_tax_id(rng, market.country, company=company),
                    street=rng.choice(pools.streets),
                    postcode=rng.choice(pools.postcodes),
                    city=rng.choice(pools.cities),
                    country=market.country,
                    currency=market.currency,
                    language=market.language,
                    owner=owner,
                    org_unit_id=owner.org_unit_id,
                    status=status,
                    created_at=created_at,
                )
            )
        return rows


def _created_event(client: Client, client_type: ContentType) -> Event:
    return Event(
        occurred_at=client.created_at,
        actor_id=client.owner_id,
        client=client,
        org_unit_id=client.org_unit_id,
        owner_id=client.owner_id,
        category=EVENT_TYPES["client.created"].category,
        type="client.created",
        reference=client.number,
        subject_type=client_type,
        subject_id=str(client.pk),
        details={"name": client.name},
    )


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
        client_type = ContentType.objects.get_for_model(Client)
        # Spread over the last two years in number order, as a real base grows.
        end = clock.now()
        step = HISTORY / missing
        start = end - HISTORY
        done = 0
        while done < missing:
            count = min(batch_size, missing - done)
            times = [start + step * (done + i + generator.rng.random()) for i in range(count)]
            with transaction.atomic():
                series, first = _reserve_numbers(count)
                rows = generator.clients(count, range(first, first + count), series, times)
                Client.objects.bulk_create(rows, batch_size=INSERT_ROWS)
                Event.objects.bulk_create(
                    [_created_event(row, client_type) for row in rows], batch_size=INSERT_ROWS
                )
            done += count
            if progress is not None:
                progress(done, missing)
    return DemoClientsResult(
        created=missing, total=existing + missing, seconds=time.perf_counter() - started
    )
