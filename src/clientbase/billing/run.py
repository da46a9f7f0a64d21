"""The billing run (BIL-4): invoices for every service that falls due, exactly once.

A run lists the clients with services due and splits them into chunks. Workers claim
chunks and bill each in one transaction: lock the due services, write invoices, lines,
numbers, ledger entries, events and the next due dates, and mark the chunk done. A
`BilledPeriod` row per service and period start, unique in the database, makes a second
billing of the same period impossible whatever crashes or runs twice; the lock on the
services makes a concurrent run see the advanced due dates and skip them.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import F, Max, Prefetch, Q, Sum, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clientbase.billing.calc import next_due
from clientbase.billing.ledger import Posting, ledger_post
from clientbase.billing.models import (
    BilledPeriod,
    BillingRun,
    BillingRunChunk,
    BillingRunError,
    Invoice,
    InvoiceLine,
    LedgerEntry,
    Service,
)
from clientbase.billing.pdf import client_snapshot
from clientbase.catalog.models import CYCLE_MONTHS, ConfigOption, Cycle, OptionPrice, Price, TaxRule
from clientbase.catalog.pricing import product_quote
from clientbase.clients.models import Address, Client
from clientbase.core import clock
from clientbase.core.audit import new_audit_entry
from clientbase.core.errors import ServiceError
from clientbase.core.events import new_event, register_event_type
from clientbase.core.models import AuditAction, EventCategory
from clientbase.core.money import Money
from clientbase.core.numbering import reserve_numbers

log = logging.getLogger(__name__)

# A chunk claimed this long ago without finishing belongs to a worker that died.
LEASE = dt.timedelta(minutes=10)
# An invoice of a service beyond this many times its catalogue price waits for a person.
SANITY_FACTOR = 3
# Catching up a service many periods behind stops here; the next run goes on.
MAX_PERIODS = 36
RENEWING = tuple(CYCLE_MONTHS)

register_event_type(
    "invoice.held",
    EventCategory.AR,
    gettext_lazy("Invoice of the billing run held for review: %(reason)s"),
)


def days_in_advance() -> int:
    """How many days before a service's due date its invoice is generated."""
    return settings.BILLING_DAYS_IN_ADVANCE


def _due(bill_until: dt.date) -> Q:
    return Q(
        status__in=(Service.Status.ACTIVE, Service.Status.SUSPENDED),
        next_due_on__lte=bill_until,
        cancel_at_period_end=False,
        cycle__in=RENEWING,
        client__merged_into=None,
        client__deleted_at=None,
    )


# ----------------------------------------------------------------------------- start


def billing_run_start(*, by=None, trigger: str = "cron", day: dt.date | None = None) -> BillingRun:
    """List the clients with services due and cut them into chunks for the workers."""
    day = day or clock.today()
    bill_until = day + dt.timedelta(days=days_in_advance())
    client_ids = list(
        Service.objects.filter(_due(bill_until))
        .order_by("client_id")
        .values_list("client_id", flat=True)
        .distinct()
    )
    with transaction.atomic():
        run = BillingRun.objects.create(
            run_date=day,
            bill_until=bill_until,
            started_by=by if getattr(by, "pk", None) else None,
            trigger=trigger,
            total_clients=len(client_ids),
        )
        size = settings.BILLING_RUN_CHUNK
        BillingRunChunk.objects.bulk_create(
            [
                BillingRunChunk(run=run, position=n, client_ids=client_ids[i : i + size])
                for n, i in enumerate(range(0, len(client_ids), size))
            ],
            batch_size=1000,
        )
        if not client_ids:
            run.status, run.finished_at = BillingRun.Status.DONE, clock.now()
            run.save(update_fields=["status", "finished_at"])
    return run


# ----------------------------------------------------------------------------- workers


def billing_run_work(run_id: int) -> int:
    """Bill chunks of the run until none is left; how many this worker billed."""
    run = BillingRun.objects.get(pk=run_id)
    billed = 0
    while (chunk := _claim(run)) is not None:
        _bill_chunk(run, chunk)
        billed += 1
    _finish_if_complete(run)
    return billed


def _claim(run: BillingRun) -> BillingRunChunk | None:
    """Take the next chunk nobody holds, or one a dead worker left, by a guarded update."""
    while True:
        stale = clock.now() - LEASE
        candidate = (
            BillingRunChunk.objects.filter(run=run)
            .filter(
                Q(state=BillingRunChunk.State.PENDING)
                | Q(state=BillingRunChunk.State.RUNNING, claimed_at__lt=stale)
            )
            .order_by("position")
            .values_list("pk", "state", "claimed_at")
            .first()
        )
        if candidate is None:
            return None
        pk, state, claimed_at = candidate
        now = clock.now()
        # Only one worker's update matches the row as it was read: that worker has it.
        taken = BillingRunChunk.objects.filter(pk=pk, state=state, claimed_at=claimed_at).update(
            state=BillingRunChunk.State.RUNNING, claimed_at=now
        )
        if taken:
            return BillingRunChunk.objects.get(pk=pk)


def _finish_if_complete(run: BillingRun) -> None:
    with transaction.atomic():
        run = BillingRun.objects.select_for_update().get(pk=run.pk)
        if run.finished_at or run.chunks.exclude(state=BillingRunChunk.State.DONE).exists():
            return
        run.status = BillingRun.Status.FAILED if run.errors else BillingRun.Status.DONE
        run.finished_at = clock.now()
        run.save(update_fields=["status", "finished_at"])


class ChunkLost(RuntimeError):
    """The chunk was taken over by another worker while this one billed it."""


def _bill_chunk(run: BillingRun, chunk: BillingRunChunk) -> None:
    """All the chunk's clients in one transaction; if that fails, each client on its own."""
    try:
        with transaction.atomic():
            outcome = _bill_clients(run, chunk.client_ids)
            _chunk_done(run, chunk, outcome)
    except ChunkLost:
        log.warning("billing run %s chunk %s was taken over", run.pk, chunk.position)
        return
    except Exception:  # one client's fault must not cost the others their invoices
        log.exception("billing run %s chunk %s failed as a whole; retrying client by client",
                      run.pk, chunk.position)  # fmt: skip
        outcome = _Outcome()
        for client_id in chunk.client_ids:
            try:
                with transaction.atomic():
                    outcome.add(_bill_clients(run, [client_id]))
            except Exception as failure:  # recorded with its reason; the others go on
                outcome.failures[client_id] = _reason(failure)
        try:
            with transaction.atomic():
                _chunk_done(run, chunk, outcome)
        except ChunkLost:
            log.warning("billing run %s chunk %s was taken over", run.pk, chunk.position)


def _reason(failure: Exception) -> str:
    if isinstance(failure, ServiceError):
        return "; ".join(failure.messages)
    return f"{type(failure).__name__}: {failure}"[:1000]


@dataclass
class _Outcome:
    invoices: int = 0
    held: int = 0
    failures: dict[int, str] = field(default_factory=dict)

    def add(self, other: _Outcome) -> None:
        self.invoices += other.invoices
        self.held += other.held
        self.failures.update(other.failures)


def _chunk_done(run: BillingRun, chunk: BillingRunChunk, outcome: _Outcome) -> None:
    """Mark the chunk done and count it in the run, in the chunk's own transaction."""
    # Only while this worker still holds the chunk: one presumed dead that finishes late
    # must not count a chunk another worker took over.
    held = BillingRunChunk.objects.filter(
        pk=chunk.pk, state=BillingRunChunk.State.RUNNING, claimed_at=chunk.claimed_at
    ).update(state=BillingRunChunk.State.DONE, finished_at=clock.now())
    if not held:
        raise ChunkLost(f"chunk {chunk.position} of run {run.pk} was taken over")
    BillingRunError.objects.bulk_create(
        [BillingRunError(run=run, client_id=c, reason=r) for c, r in outcome.failures.items()]
    )

    BillingRun.objects.filter(pk=run.pk).update(
        done_clients=F("done_clients") + len(chunk.client_ids),
        invoices=F("invoices") + outcome.invoices,
        held=F("held") + outcome.held,
        errors=F("errors") + len(outcome.failures),
        heartbeat_at=clock.now(),
    )


# ----------------------------------------------------------------------------- billing


@dataclass
class _Draft:
    """One invoice being built: a client's due services in one currency."""

    client: Client
    invoice: Invoice  # unsaved until the chunk writes it
    lines: list[InvoiceLine] = field(default_factory=list)
    periods: list[BilledPeriod] = field(default_factory=list)
    due_on: dt.date | None = None
    hold: list[str] = field(default_factory=list)


class _Prices:
    """Catalogue prices of the run, asked once per product, cycle, currency and options."""

    def __init__(self, quotes: dict[tuple, Money | None] | None = None) -> None:
        self.quotes: dict[tuple, Money | None] = {} if quotes is None else quotes

    def recurring(self, service: Service) -> Money | None:
        key = (service.product_id, service.cycle, service.currency, service.quantity,
               tuple(sorted(service.options.items())))  # fmt: skip
        if key not in self.quotes:
            try:
                quote = product_quote(
                    service.product,
                    cycle=service.cycle,
                    currency=service.currency,
                    quantity=service.quantity,
                    options=service.options,
                )
            except ServiceError:
                self.quotes[key] = None
            else:
                self.quotes[key] = quote.recurring
        return self.quotes[key]


# The prices a worker found, kept from chunk to chunk while the catalogue rows they were
# made of stay the same; one per thread, as each thread bills in a transaction of its own.
_known = threading.local()


def _prices_for(services: list[Service]) -> _Prices:
    """The chunk's prices: those found before, unless a row they come from changed since.

    Three small queries read every row `product_quote` reads for the chunk's products; a
    product whose rows differ from last time has its prices asked again.
    """
    product_ids = {s.product_id for s in services}
    rows: dict[int, list[tuple]] = defaultdict(list)
    for row in (
        Price.objects.filter(product_id__in=product_ids)
        .order_by("pk")
        .values_list("product_id", "pk", "currency", "cycle", "amount_minor", "setup_fee_minor")
    ):
        rows[row[0]].append(("price", *row[1:]))
    for row in (
        ConfigOption.objects.filter(product_id__in=product_ids)
        .order_by("pk")
        .values_list("product_id", "pk", "code", "included_units", "min_units", "max_units")
    ):
        rows[row[0]].append(("option", *row[1:]))
    for row in (
        OptionPrice.objects.filter(option__product_id__in=product_ids)
        .order_by("pk")
        .values_list("option__product_id", "pk", "option_id", "currency", "cycle", "unit_minor")
    ):
        rows[row[0]].append(("option price", *row[1:]))
    if not hasattr(_known, "rows"):
        _known.rows, _known.quotes = {}, {}
    for product_id in product_ids:
        state = tuple(rows.get(product_id, ()))
        if _known.rows.get(product_id) != state:
            _known.rows[product_id] = state
            for key in [k for k in _known.quotes if k[0] == product_id]:
                del _known.quotes[key]
    return _Prices(_known.quotes)


class _Taxes:
    """Tax rates by country and region, read once per chunk; each client's found once."""

    def __init__(self) -> None:
        self.rules: dict[str, dict[str, Decimal]] = defaultdict(dict)
        for rule in TaxRule.objects.all():
            self.rules[rule.country.upper()][rule.region.casefold()] = rule.rate
        self.clients: dict[int, Decimal] = {}

    def rate(self, client: Client) -> Decimal:
        if client.pk not in self.clients:
            self.clients[client.pk] = self._rate(client)
        return self.clients[client.pk]

    def _rate(self, client: Client) -> Decimal:
        from clientbase.billing.services import tax_place

        # The same place as an order's invoice is taxed in, from the prefetched addresses.
        country, region = tax_place(client, list(client.addresses.all()))
        if client.tax_exempt or not country:
            return Decimal(0)
        rules = self.rules.get(country.upper(), {})
        return rules.get(region.casefold(), rules.get("", Decimal(0)))


def _bill_clients(run: BillingRun, client_ids: list[int]) -> _Outcome:
    """Invoice the due services of these clients inside the caller's transaction."""
    from clientbase.billing.services import _line_from_spec

    outcome = _Outcome()
    services = list(
        Service.objects.select_for_update(of=("self",))
        .filter(_due(run.bill_until), client_id__in=client_ids)
        .order_by("pk")
    )
    if not services:
        return outcome
    # One instance per product and promo code, the promo's products read once for all:
    # not an instance per service, nor a query per service with a promo.
    prefetch_related_objects(services, "product", "promo__products")
    clients = {
        c.pk: c
        for c in Client.everything.filter(pk__in={s.client_id for s in services}).prefetch_related(
            # In the addresses' own order (type, id), as order-time invoices read them.
            Prefetch("addresses", queryset=Address.objects.all())
        )
    }
    last_billed = dict(
        BilledPeriod.objects.filter(service__in=services)
        .values("service_id")
        .annotate(end=Max("period_end"))
        .values_list("service_id", "end")
    )
    prices, taxes = _prices_for(services), _Taxes()
    drafts: dict[tuple[int, str, int], _Draft] = {}
    changed: list[tuple[Service, dict]] = []
    for service in services:
        client = clients[service.client_id]
        try:
            before = {
                "next_due_on": service.next_due_on,
                "recurring_minor": service.recurring_minor,
            }
            specs, periods, warnings = _service_periods(service, run.bill_until, prices,
                                                        last_billed.get(service.pk))  # fmt: skip
        except ServiceError as refused:
            outcome.failures[client.pk] = _reason(refused)
            continue
        if client.pk in outcome.failures:
            continue
        key = (client.pk, service.currency, service.pk if client.separate_invoices else 0)
        if key not in drafts:
            drafts[key] = _Draft(client, Invoice(client=client, currency=service.currency))
        draft = drafts[key]
        rate = taxes.rate(client)
        draft.lines.extend(
            _line_from_spec(draft.invoice, spec, len(draft.lines) + i, rate)
            for i, spec in enumerate(specs)
        )
        draft.periods.extend(periods)
        draft.hold.extend(warnings)
        first_start = periods[0].period_start
        draft.due_on = min(draft.due_on or first_start, first_start)
        changed.append((service, before))
    # A client with a fault is billed not at all, so no half of its services goes out.
    failed = set(outcome.failures)
    drafts = {k: d for k, d in drafts.items() if d.client.pk not in failed}
    changed = [(s, b) for s, b in changed if s.client_id not in failed]
    if drafts:
        _write(run, list(drafts.values()), changed, outcome)
    return outcome


def _service_periods(
    service: Service, bill_until: dt.date, prices: _Prices, last_end: dt.date | None
) -> tuple[list, list[BilledPeriod], list[str]]:
    """The lines and periods of every period of the service that starts by `bill_until`."""
    from clientbase.billing.services import service_lines

    specs, periods, warnings = [], [], []
    if service.reprice_at_renewal and not service.price_overridden:
        catalogue = prices.recurring(service)
        if catalogue is None:
            raise ServiceError(
                _("%(product)s has no %(cycle)s price in %(currency)s any more.")
                % {
                    "product": service.product.name,
                    "cycle": Cycle(service.cycle).label,
                    "currency": service.currency,
                }
            )
        service.recurring_minor = catalogue.minor
        service.reprice_at_renewal = False
    while service.next_due_on <= bill_until and len(periods) < MAX_PERIODS:
        start = service.next_due_on
        following = next_due(start, service.cycle)
        end = following - dt.timedelta(days=1)
        if last_end is not None and start <= last_end:
            warnings.append(
                _("%(product)s: the period %(start)s – %(end)s overlaps one already billed "
                  "(up to %(last)s).")
                % {"product": service.product.name, "start": start, "end": end, "last": last_end}
            )  # fmt: skip
        specs.extend(service_lines(service, None, start, end, first=False,
                                   override_minor=service.recurring_minor))  # fmt: skip
        periods.append(BilledPeriod(service=service, period_start=start, period_end=end))
        service.period_start, service.next_due_on = start, following
    catalogue = prices.recurring(service)
    if catalogue and service.recurring_minor > SANITY_FACTOR * catalogue.minor:
        warnings.append(
            _("%(product)s is billed %(price)s a period, more than %(factor)s times its "
              "catalogue price %(catalogue)s.")
            % {"product": service.product.name, "price": service.recurring,
               "factor": SANITY_FACTOR, "catalogue": catalogue}
        )  # fmt: skip
    return specs, periods, warnings


def _write(run: BillingRun, drafts: list[_Draft], changed: list, outcome: _Outcome) -> None:
    """Write the chunk's invoices with as few statements as the databases allow."""
    from clientbase.billing.services import credit_apply

    today = run.run_date
    # The renewed services and their audit entries first: they need no invoice number, and
    # the number series stays locked from `reserve_numbers` to the commit, so another
    # worker waits on what follows it only.
    _save_services([s for s, _before in changed])
    _audit(changed)
    issued = [d for d in drafts if not d.hold]
    # Before the numbers: the series stays locked from then to the commit.
    owners = {d.client.pk: d.client for d in drafts}
    snapshots = {pk: client_snapshot(owners[pk]) for pk in {d.client.pk for d in issued}}
    numbers = iter(reserve_numbers("invoice", len(issued)) if issued else [])
    for draft in drafts:
        invoice = draft.invoice
        invoice.subtotal_minor = sum(line.net_minor for line in draft.lines)
        invoice.tax_minor = sum(line.tax_minor for line in draft.lines)
        invoice.total_minor = invoice.subtotal_minor + invoice.tax_minor
        invoice.issued_on, invoice.due_on = today, max(today, draft.due_on)
        invoice.period_start = min(p.period_start for p in draft.periods)
        invoice.billing_run = run
        invoice.hold_reason = " ".join(draft.hold)[:500]
        if not draft.hold:
            number = next(numbers)
            invoice.number, invoice.number_value = number.text, number.value
            invoice.snapshot = snapshots[draft.client.pk]
            invoice.balance_minor = invoice.total_minor
            invoice.status = Invoice.Status.UNPAID if invoice.total_minor else Invoice.Status.PAID
            invoice.paid_on = None if invoice.total_minor else today
    _insert([d.invoice for d in drafts], ids=True)
    lines, periods = [], []
    for draft in drafts:
        for line in draft.lines:
            line.invoice = draft.invoice  # set again now that the invoice has its id
            lines.append(line)
        for period in draft.periods:
            period.invoice = draft.invoice
            periods.append(period)
    # Issued lines are frozen by the model's own guard; these are new rows, not changes.
    _insert(lines)
    _insert(periods)
    _history(drafts)
    ledger_post(
        [
            Posting(d.client.pk, LedgerEntry.Account.RECEIVABLE, LedgerEntry.Kind.INVOICE,
                    d.invoice.total, d.invoice.pk, d.invoice.number)
            for d in issued
        ],
        by=None,
        owner_of=None,
        owners=owners,
    )  # fmt: skip
    for draft, share in _credit_to_apply(issued):
        credit_apply(by=None, invoice=draft.invoice, amount=share)
    outcome.invoices += len(issued)
    outcome.held += len(drafts) - len(issued)
    to_email = [
        d.invoice.pk
        for d in issued
        if d.invoice.total_minor and d.client.email
        and Client.Notice.INVOICES not in (d.client.notices_opted_out or [])
    ]  # fmt: skip
    if to_email:
        transaction.on_commit(lambda: _queue_emails(to_email))


def _insert(objs: list[models.Model], *, ids: bool = False) -> None:
    """Write new rows of one model as `bulk_create` does, at a fraction of its cost.

    bulk_create compiles every value of every row through the ORM, which takes several
    times what the database takes to store the row; here each value is prepared once and
    the rows go by COPY (PostgreSQL) or one prepared INSERT (SQLite). With `ids`, each
    object gets its primary key: on PostgreSQL taken beforehand from the table's sequence,
    on SQLite from INSERT … RETURNING in the order of the rows, as bulk_create relies on.
    """
    if not objs:
        return
    model = type(objs[0])
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key and not f.generated]
    if any(f.has_db_default() for f in fields):  # a database default needs the ORM's SQL
        model.objects.bulk_create(objs, batch_size=1000)
        return
    db = transaction.get_connection()  # the connection itself: the proxy costs per value
    rows = _db_values(objs, fields, db)
    quote = db.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    table, key = quote(meta.db_table), quote(meta.pk.column)
    insert = f"INSERT INTO {table} ({columns})"
    returning = f"RETURNING {key}"
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            if ids:  # taken from the table's own sequence, as the rows would have them
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                    [meta.db_table, meta.pk.column, len(rows)],
                )
                pks = sorted(pk for (pk,) in cursor.fetchall())
                rows = [[pk, *values] for pk, values in zip(pks, rows, strict=True)]
                columns = f"{key}, {columns}"
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for values in rows:
                    copy.write_row(values)
        elif ids:
            pks, size = [], max(1, min(1000, db.ops.bulk_batch_size(fields, objs)))
            for start in range(0, len(rows), size):
                batch = rows[start : start + size]
                cursor.execute(f"{insert} VALUES {', '.join([row] * len(batch))} {returning}",
                               [value for values in batch for value in values])  # fmt: skip
                pks += [pk for (pk,) in cursor.fetchall()]
        else:
            cursor.executemany(f"{insert} VALUES {row}", rows)
    if ids:
        for obj, pk in zip(objs, pks, strict=True):
            obj.pk = pk
            obj._state.adding, obj._state.db = False, db.alias


# Django's own fields whose preparation returns a value of this type unchanged.
_STORED_AS_IS = {
    models.AutoField: int,
    models.BigAutoField: int,
    models.SmallIntegerField: int,
    models.IntegerField: int,
    models.BigIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveBigIntegerField: int,
    models.CharField: str,
    models.SlugField: str,
    models.EmailField: str,
    models.TextField: str,
    models.BooleanField: bool,
}


def _db_values(objs: list[models.Model], fields: list, db) -> list[list]:
    """Each object's values as the database takes them, as bulk_create prepares them.

    Whole numbers, text and booleans of Django's own fields, and foreign keys to them, go
    as they are, which is what their preparation would return; the rest goes through it.
    """
    plan = []
    for f in fields:
        target = f.target_field if type(f) is models.ForeignKey else f
        plan.append((f, f.attname, _STORED_AS_IS.get(type(target))))
    rows = []
    for obj in objs:
        values = []
        for f, name, kind in plan:
            if kind is not None:
                value = getattr(obj, name)
                if value is None or type(value) is kind:
                    values.append(value)
                    continue
            values.append(f.get_db_prep_save(f.pre_save(obj, True), db))
        rows.append(values)
    return rows


def _unnest(fields: list, db) -> str:
    """PostgreSQL: the rows as one array per column, as bulk_create sends them.

    The types go without length or precision (varchar[], not varchar(32)[]), so no value
    is cut on the way.
    """
    arrays = ", ".join(f"(%s)::{f.db_type(db).split('(')[0]}[]" for f in fields)
    return f"UNNEST({arrays})"


RENEWED_FIELDS = ("period_start", "next_due_on", "recurring_minor", "reprice_at_renewal")


def _save_services(services: list[Service]) -> None:
    """Write the renewed fields of the services, as `bulk_update` would, in one statement.

    Django's bulk_update builds a CASE WHEN per field and row; PostgreSQL takes one
    UPDATE … FROM UNNEST(…) instead, and SQLite, in the same process, one prepared
    UPDATE run per row.
    """
    if not services:
        return
    db = transaction.get_connection()
    fields = [Service._meta.get_field(name) for name in RENEWED_FIELDS]
    rows = _db_values(services, [*fields, Service._meta.pk], db)
    quote = db.ops.quote_name
    table, key = quote(Service._meta.db_table), quote(Service._meta.pk.column)
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            names = [quote(f.column) for f in fields]
            cursor.execute(
                f"UPDATE {table} AS s SET {', '.join(f'{n} = v.{n}' for n in names)} "
                f"FROM {_unnest([*fields, Service._meta.pk], db)} AS v({', '.join(names)}, pk) "
                f"WHERE s.{key} = v.pk",
                [list(column) for column in zip(*rows, strict=True)],
            )
        else:
            assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {key} = %s", rows)


def _history(drafts: list[_Draft]) -> None:
    events = []
    for draft in drafts:
        invoice = draft.invoice
        if draft.hold:
            events.append(new_event("invoice.held", by=None, client=draft.client,
                                    subject=invoice, amount=invoice.total,
                                    details={"reason": invoice.hold_reason}))  # fmt: skip
        else:
            events.append(new_event("invoice.issued", by=None, client=draft.client,
                                    subject=invoice, amount=invoice.total,
                                    reference=invoice.number))  # fmt: skip
    _insert(events)  # what record_events does, inside the chunk's transaction


def _audit(changed: list) -> None:
    service_type = ContentType.objects.get_for_model(Service)
    entries = []
    for service, before in changed:
        changes = {
            name: {"before": _plain(old), "after": _plain(getattr(service, name))}
            for name, old in before.items()
            if getattr(service, name) != old
        }
        entry = new_audit_entry(service, AuditAction.UPDATE, changes, None)
        entry.object_type = service_type
        entries.append(entry)
    _insert(entries)


def _plain(value):
    return value.isoformat() if isinstance(value, dt.date) else value


def _credit_to_apply(drafts: list[_Draft]) -> list[tuple[_Draft, Money]]:
    """What the credit the clients hold pays of their new invoices, in invoice order."""
    candidates = [
        d
        for d in drafts
        if d.client.auto_apply_credit and d.invoice.balance_minor and not d.invoice.credit_top_up
    ]
    if not candidates:
        return []
    ids = {d.client.pk for d in candidates}
    # Credit of clients merged into a candidate is the candidate's own (as history_ids says).
    rows = (
        LedgerEntry.objects.filter(
            Q(client_id__in=ids) | Q(client__merged_into__in=ids),
            account=LedgerEntry.Account.CREDIT,
        )
        .annotate(holder=Coalesce("client__merged_into_id", "client_id"))
        .values("holder", "currency")
        .annotate(total=Sum("amount_minor"))
    )
    left = {(r["holder"], r["currency"]): -r["total"] for r in rows if r["total"] < 0}
    shares = []
    for draft in candidates:
        key = (draft.client.pk, draft.invoice.currency)
        share = min(left.get(key, 0), draft.invoice.balance_minor)
        if share > 0:
            left[key] -= share
            shares.append((draft, Money(share, draft.invoice.currency)))
    return shares


def _queue_emails(invoice_ids: list[int]) -> None:
    from clientbase.billing.tasks import email_invoices

    email_invoices.enqueue(invoice_ids)


def next_renewal_price(service: Service) -> dict | None:
    """The price the next invoice of a renewing service will use, and whether it is new."""
    if (
        service.cycle not in RENEWING
        or service.status not in Service.LIVE
        or service.cancel_at_period_end
    ):
        return None
    if service.reprice_at_renewal and not service.price_overridden:
        catalogue = _Prices().recurring(service)
        if catalogue is not None:
            return {"amount": catalogue, "catalogue": True}
    return {"amount": service.recurring, "catalogue": False}


# ----------------------------------------------------------------------------- starting


def workers_wanted() -> int:
    """How many workers a run gets (BILLING_RUN_WORKERS, default 2)."""
    return max(1, settings.BILLING_RUN_WORKERS)


def billing_run_request(*, by, trigger: str, day: dt.date | None = None) -> BillingRun:
    """Start a run and queue its workers (staff button, API and the daily automation)."""
    from clientbase.billing.tasks import work_billing_run

    run = billing_run_start(by=by, trigger=trigger, day=day)
    if run.finished_at is None:
        for _worker in range(workers_wanted()):
            work_billing_run.enqueue(run.pk)
    return run


def billing_run_now(*, day: dt.date | None = None, helpers: int = 0) -> BillingRun:
    """Start a run and work it from this process, with helper processes of its own."""
    import subprocess
    import sys

    run = billing_run_start(trigger="cron", day=day)
    command = [sys.executable, "-m", "clientbase.cli", "billing-run", "--work", str(run.pk)]
    started = [subprocess.Popen(command) for _n in range(helpers)]
    try:
        billing_run_work(run.pk)
    finally:
        for helper in started:
            helper.wait()
    run.refresh_from_db()
    return run


def is_interrupted(run: BillingRun) -> bool:
    """A run that stopped making progress without finishing: its worker died."""
    return run.finished_at is None and run.heartbeat_at < clock.now() - LEASE


def rate(run: BillingRun) -> float:
    """Invoices per second so far."""
    end = run.finished_at or run.heartbeat_at
    seconds = (end - run.started_at).total_seconds()
    return round((run.invoices + run.held) / seconds, 1) if seconds > 0 else 0.0
