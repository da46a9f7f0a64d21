"""Catalogue fixtures: a clerk who may edit it, one who may not, and a priced product."""

import pytest

from clientbase.catalog import services
from clientbase.catalog.models import Cycle
from clientbase.core.money import Money


@pytest.fixture
def biller(make_user):
    """A billing clerk: allowed catalog.manage."""
    return make_user("bill", role="billing", unit="company")


@pytest.fixture
def seller(make_user):
    """A sales clerk: reads the catalogue, may not edit it."""
    return make_user("sam", role="sales", unit="team_a")


@pytest.fixture
def licence(biller):
    """A CRM licence: 2 000 RUB a month plus 800 RUB per user above 1 included."""
    group = services.product_group_save(by=biller, name="Licences", position=1)
    product = services.product_save(by=biller, code="crm-licence", name="CRM licence", group=group)
    services.price_set(
        by=biller,
        product=product,
        currency="RUB",
        cycle=Cycle.MONTHLY,
        amount=Money(200000, "RUB"),
        setup_fee=Money(50000, "RUB"),
    )
    users = services.option_save(
        by=biller, product=product, code="users", name="Users", included_units=1, min_units=1
    )
    services.option_price_set(
        by=biller,
        option=users,
        currency="RUB",
        cycle=Cycle.MONTHLY,
        unit_price=Money(80000, "RUB"),
    )
    return product
