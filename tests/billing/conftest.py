"""Shared billing fixtures: a billing clerk, a client in RUB, a catalogue and promo codes.

Amounts are written as major-unit strings (`rub("3800.00")`) so tests read like invoices.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest

from clientbase.billing import services
from clientbase.billing.models import (
    CreditNote,
    Invoice,
    LedgerEntry,
    Order,
    Payment,
    PaymentAllocation,
    Receipt,
    Refund,
    Service,
)
from clientbase.catalog.models import (
    ConfigOption,
    Cycle,
    OptionPrice,
    Price,
    Product,
    PromoCode,
    TaxRule,
)
from clientbase.clients.services import client_create
from clientbase.core.money import Money

# The seed's first day: orders are taken on 1 February 2019.
SEED_DAY = dt.datetime(2019, 2, 1, 9, tzinfo=dt.UTC)


def rub(amount: str) -> Money:
    """An amount in roubles written as on an invoice, e.g. rub("3800.00")."""
    return Money.from_decimal(Decimal(amount), "RUB")


def eur(amount: str) -> Money:
    """An amount in euros."""
    return Money.from_decimal(Decimal(amount), "EUR")


def line(description: str, price: str, quantity: str = "1", **fields) -> services.LineSpec:
    """A draft line with a price in major units."""
    return services.LineSpec(description, Decimal(price), Decimal(quantity), **fields)


def billing_counts() -> dict[str, int]:
    """How many rows each billing table holds: a refused action leaves these unchanged."""
    return {
        "invoices": Invoice.objects.count(),
        "issued": Invoice.objects.exclude(status="draft").count(),
        "payments": Payment.objects.count(),
        "allocations": PaymentAllocation.objects.count(),
        "refunds": Refund.objects.count(),
        "credit_notes": CreditNote.objects.count(),
        "receipts": Receipt.objects.count(),
        "ledger": LedgerEntry.objects.count(),
        "orders": Order.objects.count(),
        "services": Service.objects.count(),
    }


def invoice_state(invoice: Invoice) -> tuple:
    """An invoice's money fields and status, fresh from the database."""
    invoice.refresh_from_db()
    return (
        invoice.status,
        invoice.total_minor,
        invoice.paid_minor,
        invoice.credited_minor,
        invoice.refunded_minor,
        invoice.balance_minor,
    )


@dataclass
class Catalog:
    """The seed's products: a per-user access, a licence pack, a hotel product, an addon."""

    standard: Product  # semi-annual, 0.00 + users × 800.00 (seed: "Доступ Стандарт")
    licences: Product  # semi-annual, users × 450.00, 2 included in 1000.00
    hotel: Product  # semi-annual 13380.00 with a setup fee of 2000.00, tax inclusive
    disk: Product  # monthly 360.00, not taxable
    euro_only: Product  # priced in EUR only


def _product(code, name, prices, *, options=(), **fields) -> Product:
    product = Product.objects.create(code=code, name=name, **fields)
    for currency, cycle, amount, setup in prices:
        Price.objects.create(
            product=product,
            currency=currency,
            cycle=cycle,
            amount_minor=amount,
            setup_fee_minor=setup,
        )
    for code_, label, included, lo, hi, unit_prices in options:
        option = ConfigOption.objects.create(
            product=product,
            code=code_,
            name=label,
            included_units=included,
            min_units=lo,
            max_units=hi,
        )
        for currency, cycle, unit in unit_prices:
            OptionPrice.objects.create(
                option=option, currency=currency, cycle=cycle, unit_minor=unit
            )
    return product


@pytest.fixture
def catalog(db) -> Catalog:
    """Products with RUB prices per cycle and per-user options."""
    semi, annual, monthly = Cycle.SEMI_ANNUAL, Cycle.ANNUAL, Cycle.MONTHLY
    standard = _product(
        "standard",
        'Доступ на пользователя "Стандарт"',
        [("RUB", semi, 0, 0), ("RUB", annual, 0, 0), ("RUB", monthly, 0, 0)],
        options=[
            (
                "users",
                "Количество пользователей",
                0,
                1,
                50,
                [("RUB", semi, 80000), ("RUB", annual, 150000), ("RUB", monthly, 15000)],
            )
        ],
    )
    licences = _product(
        "licences",
        "Пакет лицензий 1С в аренду",
        [("RUB", semi, 100000, 0)],
        options=[("users", "Лицензии в аренду", 2, 2, None, [("RUB", semi, 45000)])],
    )
    hotel = _product(
        "hotel",
        "БИТ:Отель 8. ПРОФ",
        [("RUB", semi, 1338000, 200000), ("RUB", annual, 2500000, 200000)],
        tax_inclusive=True,
    )
    disk = _product("disk", "Пакет дискового пространства 5ГБ", [("RUB", monthly, 36000, 0)],
                    taxable=False)  # fmt: skip
    euro_only = _product("euro", "Euro hosting", [("EUR", monthly, 1000, 0)])
    return Catalog(standard, licences, hotel, disk, euro_only)


@pytest.fixture
def promos(db, catalog) -> dict[str, PromoCode]:
    """Promo codes: the seed's 5 % recurring one, a fixed first-invoice one, and bad ones."""
    made = {
        "ref5": PromoCode.objects.create(
            code="REF5", kind="percent", percent=Decimal("5.00"), recurring=True,
            note="Скидка для референсных клиентов 5%",
        ),
        "fixed": PromoCode.objects.create(
            code="WELCOME500", kind="fixed", amount_minor=50000, currency="RUB", max_uses=10
        ),
        "expired": PromoCode.objects.create(
            code="OLD10", kind="percent", percent=Decimal(10), expires_on=dt.date(2019, 1, 31)
        ),
        "future": PromoCode.objects.create(
            code="SOON10", kind="percent", percent=Decimal(10), starts_on=dt.date(2019, 2, 2)
        ),
        "used_up": PromoCode.objects.create(
            code="ONCE", kind="percent", percent=Decimal(10), max_uses=1, uses=1
        ),
        "last_use": PromoCode.objects.create(
            code="LAST", kind="percent", percent=Decimal(10), max_uses=1
        ),
        "hotel_only": PromoCode.objects.create(code="HOTEL", kind="percent", percent=Decimal(20)),
    }  # fmt: skip
    made["hotel_only"].products.set([catalog.hotel])
    return made


@pytest.fixture
def clerk(make_user):
    """A billing clerk who sees every client."""
    return make_user("bill", role="billing", unit="company")


@pytest.fixture
def make_client(clerk):
    """Make a client (RUB, Russia, no tax rule unless a test adds one)."""
    made = []

    def make(name: str = "ООО «Фабрика Бизнеса»", **fields):
        fields.setdefault("currency", "RUB")
        fields.setdefault("country", "RU")
        fields.setdefault("email", f"client{len(made) + 1}@example.com")
        client = client_create(by=clerk, name=name, **fields)
        made.append(client)
        return client

    return make


@pytest.fixture
def rub_client(make_client):
    """The seed's client, billed in roubles."""
    return make_client()


@pytest.fixture
def seed_day(time_machine):
    """Travel to 1 February 2019, 09:00 UTC, with the clock standing still."""
    time_machine.move_to(SEED_DAY, tick=False)
    return SEED_DAY.date()


@pytest.fixture
def issue(clerk):
    """Issue an invoice for a client from lines written as (description, price[, qty])."""

    def make(client, *lines, **fields) -> Invoice:
        specs = [item if isinstance(item, services.LineSpec) else line(*item) for item in lines]
        draft = services.invoice_create(by=clerk, client=client, lines=specs, **fields)
        return services.invoice_issue(by=clerk, invoice=draft)

    return make


@pytest.fixture
def pay(clerk):
    """Record a bank transfer, optionally spread over invoices [(invoice, Money | None)]."""

    def make(client, amount: Money, *invoices, **fields) -> Payment:
        allocations = [item if isinstance(item, tuple) else (item, None) for item in invoices]
        return services.payment_record(
            by=clerk,
            client=client,
            amount=amount,
            method=fields.pop("method", "bank_transfer"),
            invoices=allocations,
            **fields,
        )

    return make


@pytest.fixture
def vat_ru(db):
    """Russian VAT of 20 %, and 10 % in one region."""
    return [
        TaxRule.objects.create(name="НДС", country="RU", rate=Decimal(20)),
        TaxRule.objects.create(name="НДС 10", country="RU", region="Крым", rate=Decimal(10)),
    ]
