"""Property tests of the whole API against its own OpenAPI document (schemathesis).

Every operation gets generated valid and invalid requests; no answer may be a 5xx, use a
status the operation does not declare, or break the declared schema of its body.
"""

import json

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from clientbase.accounts.services import token_create
from clientbase.api import api
from clientbase.clients.services import client_create

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_app():
    """The real WSGI application, kept inside the test's transaction.

    Django closes "old" connections when a request starts and ends; inside a test that is
    the connection holding the test's transaction, so, like Django's test client, leave
    it open while the generated requests run.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(admin_user):
    """An administrator's token, and a few clients for the generated ids to find."""
    for number in range(3):
        client_create(by=admin_user, name=f"Seed {number}", email=f"seed{number}@example.com")
    return token_create(user=admin_user, name="schemathesis", by=None).secret


# The document is built from the API object itself, which is what /api/v1/openapi.json
# serves; `schemathesis.pytest.from_fixture` would load it lazily, but it does not run on
# pytest 9 yet (it sets `Function._nodeid`, which pytest 9 no longer has).
schema = schemathesis.openapi.from_dict(json.loads(json.dumps(api.get_openapi_schema())))


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    # The database fixture is shared by the examples on purpose: state builds up.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
def test_every_operation_answers_as_documented(case, wsgi_app, admin_token):
    """No 5xx, no undeclared status or media type, no body that breaks its schema."""
    case.call_and_validate(
        app=wsgi_app, headers={"Authorization": f"Bearer {admin_token}"}, checks=CHECKS
    )


def test_the_served_document_is_the_one_tested(client, db):
    """What /api/v1/openapi.json serves is exactly the document the cases come from."""
    assert client.get("/api/v1/openapi.json").json() == schema.raw_schema
