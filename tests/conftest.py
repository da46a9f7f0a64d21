"""Shared fixtures: an organisation tree, staff in each role, and API clients."""

import pytest
from django.db import connection
from django.test import Client as HttpClient
from hypothesis import settings as hypothesis_settings

from clientbase.accounts.models import OrgUnit, Role, User
from clientbase.accounts.roles import ensure_default_roles
from clientbase.accounts.services import org_unit_create, token_create, user_create
from clientbase.clients.services import client_create

PASSWORD = "correct-horse-battery-9"

# Speed is measured by the benchmarks, not by tests: a loaded machine must not fail an example.
hypothesis_settings.register_profile("clientbase", deadline=None)
hypothesis_settings.load_profile("clientbase")


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` run only when the suite runs on PostgreSQL."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def english_between_tests():
    """Each test starts in English: a request in another language leaves it active on the thread."""
    from django.utils import translation

    yield
    translation.deactivate()


@pytest.fixture
def default_roles(db):
    """The roles a new installation has (a transactional test before may have flushed them)."""
    ensure_default_roles(Role)


@pytest.fixture
def org(db, default_roles):
    """Company → region → branch → two teams."""
    company = org_unit_create(name="Acme", kind=OrgUnit.Kind.COMPANY, parent=None, by=None)
    region = org_unit_create(name="North", kind=OrgUnit.Kind.REGION, parent=company, by=None)
    branch = org_unit_create(name="Paris", kind=OrgUnit.Kind.BRANCH, parent=region, by=None)
    team_a = org_unit_create(name="Team A", kind=OrgUnit.Kind.TEAM, parent=branch, by=None)
    team_b = org_unit_create(name="Team B", kind=OrgUnit.Kind.TEAM, parent=branch, by=None)
    return {
        "company": company,
        "region": region,
        "branch": branch,
        "team_a": team_a,
        "team_b": team_b,
    }


@pytest.fixture
def make_user(db, org):
    """Make a user with a role (by slug) in a unit (by fixture key)."""

    def make(username: str, role: str = "sales", unit: str = "team_a", **fields) -> User:
        return user_create(
            username=username,
            password=PASSWORD,
            by=None,
            email=fields.pop("email", f"{username}@example.com"),
            role=Role.objects.get(slug=role),
            org_unit=org[unit],
            **fields,
        )

    return make


@pytest.fixture
def admin_user(make_user):
    """An administrator who sees everything."""
    return make_user("root", role="administrator", unit="company")


@pytest.fixture
def signed_in(client):
    """Sign a user in to the test browser client (password step only)."""

    def sign_in(user: User) -> HttpClient:
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture
def api_client():
    """A test client that calls the API with a user's fresh token."""

    def for_user(user: User) -> HttpClient:
        issued = token_create(user=user, name="tests", by=None)
        return HttpClient(headers={"Authorization": f"Bearer {issued.secret}"})

    return for_user


@pytest.fixture
def on_postgres():
    """Whether the suite runs on PostgreSQL."""
    return connection.vendor == "postgresql"


# Sales and marketing: two sellers in different teams, their manager, and a client.


@pytest.fixture
def seller(make_user):
    """A seller in team A who sees only what they own."""
    return make_user("marie", role="sales", unit="team_a", first_name="Marie", last_name="Dupont")


@pytest.fixture
def other_seller(make_user):
    """A seller in team B: nothing of team A's is in their sight."""
    return make_user("minh", role="sales", unit="team_b", first_name="Minh", last_name="Tran")


@pytest.fixture
def sales_manager(make_user):
    """The branch's manager, who sees both teams."""
    return make_user("olga", role="manager", unit="branch", first_name="Olga", last_name="Petrova")


@pytest.fixture
def buyer(seller):
    """A company client of the seller, invoiced in euros."""
    return client_create(
        by=seller,
        name="Atelier Lumière",
        email="contact@atelier-lumiere.fr",
        country="FR",
        currency="EUR",
        language="fr",
    )
