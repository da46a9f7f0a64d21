"""Credit limits (BIL-14): how much a client may owe, thresholds that warn, and enforcement.

What a client owes in a currency is its invoices' balances less the credit it holds, read
from the ledger. An enforced limit refuses an order or invoice that would pass it, naming
the amount over; thresholds (fixed amounts, or percentages of the span from floor to
limit) each notify once per crossing, and again only after the balance fell back below.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clientbase.billing.ledger import client_sums
from clientbase.billing.models import CreditLimit
from clientbase.catalog.pricing import check_currency
from clientbase.clients.models import Client
from clientbase.clients.services import history_ids
from clientbase.core.audit import audit_create, audit_update, snapshot
from clientbase.core.errors import ServiceError
from clientbase.core.events import record_event, register_event_type
from clientbase.core.models import EventCategory
from clientbase.core.money import Money, round_half_up

register_event_type(
    "credit.threshold",
    EventCategory.AR,
    gettext_lazy("Credit threshold %(threshold)s reached: %(amount)s owed of a %(limit)s limit"),
)


def owed(client: Client, currency: str) -> Money:
    """What the client owes in a currency: invoice balances less the credit held."""
    sums = client_sums(history_ids(client)).get(currency, {"receivable": 0, "credit": 0})
    return Money(sums["receivable"] - sums["credit"], currency)


@dataclass(frozen=True)
class LimitView:
    """A limit as the profile shows it: owed, room left and what is beyond it."""

    limit: CreditLimit
    owed: Money
    beyond: Money  # the outstanding amount over the limit
    thresholds: list[Money]

    @property
    def unlimited(self) -> bool:
        return self.limit.limit_minor is None

    @property
    def limit_money(self) -> Money | None:
        return None if self.unlimited else Money(self.limit.limit_minor, self.limit.currency)


def thresholds_of(limit: CreditLimit) -> list[Money]:
    """The amounts owed at which the client is warned, lowest first."""
    amounts = set(limit.fixed_thresholds or [])
    if limit.limit_minor is not None:
        span = limit.limit_minor - limit.floor_minor
        for percent in limit.percent_thresholds or []:
            amounts.add(limit.floor_minor + round_half_up(Decimal(span) * percent / 100))
    return [Money(a, limit.currency) for a in sorted(amounts)]


def limits_of(client: Client) -> list[LimitView]:
    """Every limit of the client with what it owes against it."""
    views = []
    for limit in client.credit_limits.order_by("currency"):
        now = owed(client, limit.currency)
        over = 0 if limit.limit_minor is None else max(0, now.minor - limit.limit_minor)
        views.append(LimitView(limit, now, Money(over, limit.currency), thresholds_of(limit)))
    return views


def credit_limit_set(
    *,
    by,
    client: Client,
    currency: str,
    limit: Money | None,
    floor: Money | None = None,
    fixed_thresholds: list[Money] = (),
    percent_thresholds: list[int] = (),
    enforce: bool = True,
) -> CreditLimit:
    """Set (or change) the client's limit in a currency; None is unlimited."""
    currency = check_currency(currency)
    floor = floor or Money.zero(currency)
    for name, amount in [
        ("limit", limit),
        ("floor", floor),
        *[("fixed_thresholds", a) for a in fixed_thresholds],
    ]:
        if amount is not None and amount.currency != currency:
            raise ServiceError(_("Give every amount in %(currency)s.") % {"currency": currency},
                               field=name)  # fmt: skip
    if limit is not None and floor.minor > limit.minor:
        raise ServiceError(_("The floor cannot be above the limit."), field="floor")
    top = limit.minor if limit is not None else None
    for amount in fixed_thresholds:
        if amount.minor < floor.minor or (top is not None and amount.minor > top):
            raise ServiceError(
                _("A threshold lies between the floor and the limit."), field="fixed_thresholds"
            )
    percents = sorted({int(p) for p in percent_thresholds})
    if any(not 1 <= p <= 100 for p in percents):
        raise ServiceError(_("A percentage is between 1 and 100."), field="percent_thresholds")
    if percents and limit is None:
        raise ServiceError(
            _("Percentage thresholds need a limit to be a percentage of."),
            field="percent_thresholds",
        )
    with transaction.atomic():
        existing = CreditLimit.objects.select_for_update().filter(client=client, currency=currency)
        record = existing.first()
        before = snapshot(record) if record else None
        record = record or CreditLimit(client=client, currency=currency)
        record.limit_minor = top
        record.floor_minor = floor.minor
        record.fixed_thresholds = sorted({a.minor for a in fixed_thresholds})
        record.percent_thresholds = percents
        record.enforce = enforce
        record.crossed = []  # new thresholds: each may warn again
        record.save()
        if before is None:
            audit_create(record, by=by)
        else:
            audit_update(record, before, by=by)
    return record


def credit_limit_remove(*, by, limit: CreditLimit) -> None:
    """No limit in that currency any more."""
    from clientbase.core.audit import audit_delete

    with transaction.atomic():
        audit_delete(limit, by=by)
        limit.delete()


def check_limit(client: Client, adding: Money) -> None:
    """Refuse, naming the amount over, what would take the client past an enforced limit."""
    limit = CreditLimit.objects.filter(client=client, currency=adding.currency).first()
    if limit is None or limit.limit_minor is None or not limit.enforce or adding.minor <= 0:
        return
    after = owed(client, adding.currency) + adding
    over = after.minor - limit.limit_minor
    if over > 0:
        raise ServiceError(
            _("This would pass the client's credit limit of %(limit)s by %(over)s.")
            % {
                "limit": Money(limit.limit_minor, limit.currency),
                "over": Money(over, limit.currency),
            },
            field="credit_limit",
        )


def thresholds_check(client: Client) -> list[str]:
    """Notify each threshold newly reached; forget those the balance fell back below."""
    reached = []
    with transaction.atomic():
        for limit in CreditLimit.objects.select_for_update().filter(client=client):
            now = owed(client, limit.currency)
            crossed = []
            for threshold in thresholds_of(limit):
                if now.minor < threshold.minor:
                    continue
                crossed.append(threshold.minor)
                if threshold.minor not in (limit.crossed or []):
                    record_event(
                        "credit.threshold",
                        by=None,
                        client=client,
                        subject=limit,
                        amount=now,
                        details={
                            "threshold": str(threshold),
                            "limit": str(Money(limit.limit_minor, limit.currency))
                            if limit.limit_minor is not None
                            else _("unlimited"),
                        },
                    )
                    reached.append(str(threshold))
            if crossed != list(limit.crossed or []):
                limit.crossed = crossed
                limit.save(update_fields=["crossed"])
    return reached


def after_commit_check(client_id: int) -> None:
    """Check the thresholds once the money movement that may cross them is committed."""
    transaction.on_commit(
        lambda: thresholds_check(Client.everything.get(pk=client_id)), robust=True
    )
