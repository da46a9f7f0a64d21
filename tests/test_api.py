"""The API shell: docs, tokens, /me, problem documents, pagination and visibility."""

import datetime as dt
import hashlib
import io
import json
import re

import pytest
import time_machine
from django.core.management import call_command
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client as HttpClient

from clientbase.accounts.models import ApiToken, User
from clientbase.accounts.services import token_create, token_revoke, user_update
from clientbase.clients import queries
from clientbase.clients.models import Client
from clientbase.clients.services import client_create
from clientbase.core.models import AuditEntry, Event

NOON = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
UNAUTHORIZED = {
    "type": "about:blank",
    "title": "Not signed in",
    "status": 401,
    "detail": "Send a valid API token: Authorization: Bearer <token>.",
    "errors": [],
}
NOT_FOUND = {
    "type": "about:blank",
    "title": "Not found",
    "status": 404,
    "detail": "No such record, or not one you may see.",
    "errors": [],
}
FORBIDDEN = {
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
    "detail": "Your role does not allow this action.",
    "errors": [],
}


def _invalid(*errors: tuple[str, str]) -> dict:
    return {
        "type": "about:blank",
        "title": "Invalid request",
        "status": 422,
        "detail": "Some fields are not right.",
        "errors": [{"field": field, "message": message} for field, message in errors],
    }


def _problem(response, status: int) -> dict:
    """The body of a problem response, after checking its status and media type."""
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def _bearer(secret: str) -> HttpClient:
    return HttpClient(headers={"Authorization": f"Bearer {secret}"})


def _post(http: HttpClient, path: str, data, headers: dict | None = None):
    return http.post(path, json.dumps(data), content_type="application/json", headers=headers)


def _patch(http: HttpClient, path: str, data):
    return http.patch(path, json.dumps(data), content_type="application/json")


def _shown(client: Client) -> dict:
    """A client as the API shows it."""
    client.refresh_from_db()
    return {
        "id": client.pk,
        "number": client.number,
        "kind": client.kind,
        "name": client.name,
        "email": client.email,
        "phone": client.phone,
        "tax_id": client.tax_id,
        "street": client.street,
        "postcode": client.postcode,
        "city": client.city,
        "country": client.country,
        "currency": client.currency,
        "language": client.language,
        "status": client.status,
        "version": client.version,
        "status_since": client.status_since,
        "first_name": client.first_name,
        "last_name": client.last_name,
        "company_name": client.company_name,
        "kpp": client.kpp,
        "national_id": client.national_id,
        "payment_method": client.payment_method,
        "group_id": client.group_id,
        "tax_exempt": client.tax_exempt,
        "separate_invoices": client.separate_invoices,
        "billing_day": client.billing_day,
        "auto_apply_credit": client.auto_apply_credit,
        "suspend_exempt_until": None,
        "late_fee_exempt": client.late_fee_exempt,
        "no_overdue_notices": client.no_overdue_notices,
        "no_card_autopay": client.no_card_autopay,
        "sales_manager_id": client.sales_manager_id,
        "source": client.source,
        "utm_source": client.utm_source,
        "utm_medium": client.utm_medium,
        "utm_campaign": client.utm_campaign,
        "referred_by_id": client.referred_by_id,
        "tags": client.tags,
        "consent_email": client.consent_email,
        "consent_sms": client.consent_sms,
        "consent_api": client.consent_api,
        "preferred_channel": client.preferred_channel,
        "notices_opted_out": client.notices_opted_out,
        "parent_id": client.parent_id,
        "bill_to_parent": client.bill_to_parent,
        "custom_fields": dict(client.custom),
        "owner_id": client.owner_id,
        "org_unit_id": client.org_unit_id,
        # as JSON has it: milliseconds and "Z"
        "created_at": DjangoJSONEncoder().default(client.created_at),
    }


def _client(by: User, name: str, **fields) -> Client:
    return client_create(by=by, name=name, email=f"{name.lower()}@example.com", **fields)


# --- docs and schema -----------------------------------------------------------------------


def test_docs_page_loads_swagger_from_our_static_files_under_the_strict_csp(client, db):
    # when anyone opens the API docs
    response = client.get("/api/v1/docs")
    # then the page is served, and every script and style comes from /static/
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', html)
    assert sources == [
        "/static/ninja/swagger-ui.css",
        "/static/ninja/favicon.svg",
        "/static/ninja/favicon.png",
        "/static/ninja/swagger-ui-bundle.js",
        "/static/ninja/swagger-ui-init.js",
    ]
    assert "//" not in "".join(sources)
    # and the only script without a source is a JSON data block, which a browser never runs
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline == [' type="application/json" id="swagger-settings"']
    settings_json = re.search(r'id="swagger-settings">(.*?)</script>', html, re.S).group(1)
    assert json.loads(settings_json) == {
        "layout": "BaseLayout",
        "deepLinking": True,
        "validatorUrl": None,
        "url": "/api/v1/openapi.json",
    }
    # and the site's CSP stays strict: scripts from our origin only, nothing inline
    policy = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    # and the files it names are really served
    for source in sources:
        assert client.get(source).status_code == 200


def test_openapi_document_declares_every_answer_of_the_shell(client, db):
    # when the schema is fetched
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    operations = {
        (method, path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    # then the shell's operations declare exactly the statuses they may answer
    shell = {
        ("get", "/api/v1/me"): ["200", "401", "500"],
        ("get", "/api/v1/clients"): ["200", "401", "422", "500"],
        ("post", "/api/v1/clients"): ["201", "400", "401", "403", "409", "422", "500"],
        ("get", "/api/v1/clients/{client_id}"): ["200", "401", "404", "422", "500"],
        ("patch", "/api/v1/clients/{client_id}"): [
            "200",
            "400",
            "401",
            "403",
            "404",
            "409",
            "422",
            "500",
        ],
    }
    assert {key: sorted(operations[key]["responses"]) for key in shell} == shell
    # and in every operation, each error is a problem document
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operation in operations.values():
        for status, answer in operation["responses"].items():
            if int(status) >= 400:
                assert answer["content"] == problem
    assert schema["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "errors",
    ]
    # and every POST names the Idempotency-Key header, once
    for (method, _path), operation in operations.items():
        if method == "post":
            keys = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
            assert [(p["in"], p["required"]) for p in keys] == [("header", False)]
    # and the document is the same each time it is built
    assert client.get("/api/v1/openapi.json").json() == schema


# --- authentication and tokens -------------------------------------------------------------


def test_me_answers_who_the_token_belongs_to(make_user, org):
    # given a sales user with a token
    ann = make_user("ann", role="sales", unit="team_a", first_name="Ann", last_name="Lee")
    issued = token_create(user=ann, name="laptop", by=ann)
    # when they ask who they are
    response = _bearer(issued.secret).get("/api/v1/me")
    # then the answer is their identity, role, reach and allowed actions
    assert response.status_code == 200
    assert response.json() == {
        "id": ann.pk,
        "username": "ann",
        "name": "Ann Lee",
        "email": "ann@example.com",
        "language": "en",
        "role": "sales",
        "scope": "own",
        "org_unit": "Team A",
        "permissions": [
            "billing.sell",
            "clients.add",
            "clients.add_note",
            "clients.change",
            "sales.work",
            "support.work",
        ],
    }
    # and the token's last use is noted
    issued.token.refresh_from_db()
    assert issued.token.last_used_at is not None


def test_me_works_for_a_signed_in_session_too(signed_in, make_user):
    ann = make_user("ann", role="manager", unit="branch")
    response = signed_in(ann).get("/api/v1/me")
    assert response.status_code == 200
    assert (response.json()["username"], response.json()["scope"]) == ("ann", "unit")


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer cb_not-a-token", "Bearer ", "Basic YW5uOnB3", "cb_no-scheme"],
    ids=["none", "unknown", "empty", "other-scheme", "no-scheme"],
)
def test_without_a_valid_token_every_operation_is_401(make_user, authorization):
    # given a client in the base
    ann = make_user("ann")
    existing = _client(ann, "Kept")
    headers = {"Authorization": authorization} if authorization else {}
    http = HttpClient(headers=headers, enforce_csrf_checks=True)
    # when a caller without a valid token reads or writes
    answers = [
        http.get("/api/v1/me"),
        http.get("/api/v1/clients"),
        http.get(f"/api/v1/clients/{existing.pk}"),
        _post(http, "/api/v1/clients", {"name": "New", "email": "new@example.com"}),
        _patch(http, f"/api/v1/clients/{existing.pk}", {"name": "Changed"}),
    ]
    # then each is a 401 problem (not a CSRF 403), and nothing changed
    assert [_problem(answer, 401) for answer in answers] == [UNAUTHORIZED] * 5
    assert {answer["WWW-Authenticate"] for answer in answers} == {'Bearer realm="api"'}
    assert list(Client.objects.values_list("name", flat=True)) == ["Kept"]


def test_a_revoked_token_stops_working(make_user):
    # given a token that worked
    ann = make_user("ann")
    issued = token_create(user=ann, name="laptop", by=ann)
    http = _bearer(issued.secret)
    assert http.get("/api/v1/me").status_code == 200
    # when it is revoked
    token_revoke(token=issued.token, by=ann)
    # then it gets 401
    assert _problem(http.get("/api/v1/me"), 401) == UNAUTHORIZED
    assert _problem(_post(http, "/api/v1/clients", {"name": "X", "email": "x@x.io"}), 401)
    assert Client.objects.count() == 0


def test_the_token_of_a_deactivated_user_stops_working(make_user, admin_user):
    ann = make_user("ann")
    issued = token_create(user=ann, name="laptop", by=ann)
    user_update(user=ann, by=admin_user, is_active=False)
    assert _problem(_bearer(issued.secret).get("/api/v1/me"), 401) == UNAUTHORIZED


def test_only_the_digest_of_a_token_is_stored(make_user):
    # given a new token
    ann = make_user("ann")
    issued = token_create(user=ann, name="laptop", by=ann)
    # then its row keeps the SHA-256 digest and a short prefix, never the secret
    row = ApiToken.objects.values().get(pk=issued.token.pk)
    assert row["digest"] == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert row["prefix"] == issued.secret[:10]
    assert len(issued.secret) == 46
    # and no stored row anywhere it might leak to holds the secret
    for model in (ApiToken, AuditEntry, Event):
        for stored in model.objects.values():
            assert issued.secret not in json.dumps(stored, default=str)
            assert issued.secret[10:] not in json.dumps(stored, default=str)


def test_token_command_prints_a_token_once_that_then_works(make_user):
    # given a user
    ann = make_user("ann")
    out = io.StringIO()
    # when an operator makes a token on the command line
    call_command("token", "create", "--user", "ann", "--name", "script", stdout=out)
    # then exactly one line is printed: the secret
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    secret = lines[0]
    assert secret.startswith("cb_")
    # and it signs in as that user
    response = _bearer(secret).get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["username"] == "ann"
    # and only its digest is stored
    token = ApiToken.objects.get(user=ann)
    assert (token.name, token.digest) == ("script", hashlib.sha256(secret.encode()).hexdigest())
    # and listing the tokens never shows the secret again
    listing = io.StringIO()
    call_command("token", "list", "--user", "ann", stdout=listing)
    assert listing.getvalue() == f"{secret[:10]}…\tscript\tactive\n"


def test_a_session_write_needs_the_csrf_token(make_user):
    # given a signed-in browser that does not send the CSRF token
    ann = make_user("ann")
    browser = HttpClient(enforce_csrf_checks=True)
    browser.force_login(ann)
    # when it posts to the API
    response = _post(browser, "/api/v1/clients", {"name": "X", "email": "x@example.com"})
    # then it is a 403 problem and nothing is created
    assert _problem(response, 403) == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "CSRF check Failed",
        "errors": [],
    }
    assert Client.objects.count() == 0
    # while the same post with the page's CSRF token goes through
    browser.get("/")
    response = _post(
        browser,
        "/api/v1/clients",
        {"name": "X", "email": "x@example.com"},
        headers={"X-CSRFToken": browser.cookies["csrftoken"].value},
    )
    assert response.status_code == 201
    assert list(Client.objects.values_list("name", flat=True)) == ["X"]


# --- clients: create, read, change ---------------------------------------------------------


def test_create_then_get_a_client(api_client, make_user, org):
    # given a sales user
    ann = make_user("ann")
    http = api_client(ann)
    # when they create a client
    with time_machine.travel(NOON, tick=False):
        response = _post(
            http,
            "/api/v1/clients",
            {"name": " Dupont SA ", "email": "Contact@Dupont.fr", "country": "FR"},
        )
    # then it is created with the next number, owned by them in their unit
    assert response.status_code == 201
    created = Client.objects.get()
    assert response.json() == {
        "id": created.pk,
        "number": "1",
        "kind": "company",
        "name": "Dupont SA",
        "email": "Contact@dupont.fr",  # the domain is lowercased, the name kept
        "phone": "",
        "tax_id": "",
        "street": "",
        "postcode": "",
        "city": "",
        "country": "FR",
        "currency": "EUR",
        "language": "en",
        "status": "active",
        "version": 1,
        "status_since": None,
        "first_name": "",
        "last_name": "",
        "company_name": "Dupont SA",
        "kpp": "",
        "national_id": "",
        "payment_method": "bank_transfer",
        "group_id": None,
        "tax_exempt": False,
        "separate_invoices": False,
        "billing_day": None,
        "auto_apply_credit": True,
        "suspend_exempt_until": None,
        "late_fee_exempt": False,
        "no_overdue_notices": False,
        "no_card_autopay": False,
        "sales_manager_id": None,
        "source": "",
        "utm_source": "",
        "utm_medium": "",
        "utm_campaign": "",
        "referred_by_id": None,
        "tags": "",
        "consent_email": False,
        "consent_sms": False,
        "consent_api": False,
        "preferred_channel": "email",
        "notices_opted_out": [],
        "parent_id": None,
        "bill_to_parent": False,
        "custom_fields": {},
        "owner_id": ann.pk,
        "org_unit_id": org["team_a"].pk,
        "created_at": "2025-03-01T12:00:00Z",
    }
    # and the newsfeed has its event
    assert list(Event.objects.filter(client__isnull=False).values_list("type", "client")) == [
        ("client.created", created.pk)
    ]
    # and it reads back the same
    again = http.get(f"/api/v1/clients/{created.pk}")
    assert (again.status_code, again.json()) == (200, response.json())


def test_invalid_input_is_a_422_problem_at_each_field(api_client, admin_user):
    # when a client is posted with fields that break the schema
    response = _post(
        api_client(admin_user),
        "/api/v1/clients",
        {"name": "x" * 201, "email": "x", "kind": "robot", "owner_id": 0, "phone": "1" * 33},
    )
    # then each field says what is wrong, and nothing is created
    assert _problem(response, 422) == _invalid(
        ("kind", "Input should be 'individual' or 'company'"),
        ("name", "String should have at most 200 characters"),
        ("email", "String should have at least 3 characters"),
        ("phone", "String should have at most 32 characters"),
        ("owner_id", "Input should be greater than or equal to 1"),
    )
    assert Client.objects.count() == 0
    assert Event.objects.filter(type="client.created").count() == 0


def test_text_a_database_cannot_store_is_refused_at_its_field(api_client, admin_user):
    http = api_client(admin_user)
    response = _post(http, "/api/v1/clients", {"name": "Nul\u0000", "email": "n@example.com"})
    assert _problem(response, 422) == _invalid(("name", "Text must not contain NUL characters"))
    assert _problem(http.get("/api/v1/clients?q=%00"), 422) == _invalid(
        ("q", "Text must not contain NUL characters")
    )
    assert Client.objects.count() == 0


def test_ids_beyond_64_bits_are_a_422_not_a_crash(api_client, admin_user):
    http = api_client(admin_user)
    assert _problem(http.get(f"/api/v1/clients/{2**63}"), 422) == _invalid(
        ("client_id", "Input should be less than or equal to 9223372036854775807")
    )
    response = _post(http, "/api/v1/clients", {"name": "A", "email": "a@x.io", "owner_id": 2**64})
    assert _problem(response, 422) == _invalid(
        ("owner_id", "Input should be less than or equal to 9223372036854775807")
    )
    assert Client.objects.count() == 0


def test_a_body_that_is_not_json_is_a_400_problem(api_client, admin_user):
    response = api_client(admin_user).post(
        "/api/v1/clients", "{nope", content_type="application/json"
    )
    assert _problem(response, 400) == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "Cannot parse request body",
        "errors": [],
    }
    assert Client.objects.count() == 0


def test_a_duplicate_email_is_refused_by_the_service_at_the_email_field(api_client, make_user):
    # given a client with an email
    ann = make_user("ann")
    first = _client(ann, "First")
    # when another client is posted with the same email in other case
    response = _post(
        api_client(ann), "/api/v1/clients", {"name": "Second", "email": "FIRST@example.com"}
    )
    # then the service refuses it at "email", and nothing is created
    message = f"Client {first.number} already uses this email."
    assert _problem(response, 422) == {
        "type": "about:blank",
        "title": "Refused",
        "status": 422,
        "detail": message,
        "errors": [{"field": "email", "message": message}],
    }
    assert list(Client.objects.values_list("name", flat=True)) == ["First"]
    assert Event.objects.filter(type="client.created").count() == 1


def test_unknown_references_are_refused_at_the_api_field_names(api_client, admin_user):
    response = _post(
        api_client(admin_user),
        "/api/v1/clients",
        {"name": "A", "email": "a@example.com", "org_unit_id": 987654},
    )
    assert _problem(response, 422)["errors"] == [
        {"field": "org_unit_id", "message": "No such org unit."}
    ]
    assert Client.objects.count() == 0


def test_a_service_field_is_renamed_to_the_api_field(api_client, make_user):
    # given a superuser outside any unit, so the client would have no unit
    boss = make_user("boss", role="administrator", unit="company")
    user_update(user=boss, by=boss, org_unit=None)
    # when they create a client without naming a unit
    response = _post(api_client(boss), "/api/v1/clients", {"name": "A", "email": "a@example.com"})
    # then the refusal names the API's field, org_unit_id
    assert _problem(response, 422)["errors"] == [
        {"field": "org_unit_id", "message": "Choose the unit the client belongs to."}
    ]
    assert Client.objects.count() == 0


def test_a_role_without_the_action_gets_403_and_nothing_changes(api_client, make_user):
    # given a support user, who sees all clients but may not add or change them
    ann = make_user("ann")
    kept = _client(ann, "Kept")
    http = api_client(make_user("sid", role="support", unit="company"))
    # when they try to create and to change
    created = _post(http, "/api/v1/clients", {"name": "New", "email": "new@example.com"})
    changed = _patch(http, f"/api/v1/clients/{kept.pk}", {"name": "Changed"})
    # then both are 403 problems, and nothing changed
    assert _problem(created, 403) == FORBIDDEN
    assert _problem(changed, 403) == FORBIDDEN
    assert list(Client.objects.values_list("name", flat=True)) == ["Kept"]
    # while reading is allowed
    assert http.get(f"/api/v1/clients/{kept.pk}").json() == _shown(kept)


def test_patch_changes_only_the_given_fields(api_client, make_user):
    ann = make_user("ann")
    target = _client(ann, "Old", phone="+33100000000")
    response = _patch(api_client(ann), f"/api/v1/clients/{target.pk}", {"name": "New"})
    assert response.status_code == 200
    assert response.json() == _shown(target)
    assert (target.name, target.phone, target.email) == ("New", "+33100000000", "old@example.com")
    assert list(Event.objects.filter(type="client.changed").values_list("details", flat=True)) == [
        {"fields": ["company_name", "name"]}
    ]


def test_patch_to_a_taken_email_is_refused_and_nothing_changes(api_client, make_user):
    ann = make_user("ann")
    taken = _client(ann, "Taken")
    target = _client(ann, "Target")
    response = _patch(api_client(ann), f"/api/v1/clients/{target.pk}", {"email": taken.email})
    assert _problem(response, 422)["errors"] == [
        {"field": "email", "message": f"Client {taken.number} already uses this email."}
    ]
    target.refresh_from_db()
    assert target.email == "target@example.com"


def test_a_server_error_is_a_500_problem_document(api_client, admin_user, monkeypatch, caplog):
    # given a fault deep in a read
    def broken(user, text):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(queries, "client_search", broken)
    # when the list is asked for
    response = api_client(admin_user).get("/api/v1/clients")
    # then the answer is a problem document that leaks nothing
    assert _problem(response, 500) == {
        "type": "about:blank",
        "title": "Server error",
        "status": 500,
        "detail": "Something went wrong on our side; try again later.",
        "errors": [],
    }
    # and the failure is logged as Django logs one
    assert [(r.name, r.levelname, r.exc_info[1].args) for r in caplog.records] == [
        ("django.request", "ERROR", ("database on fire",))
    ]


def test_unknown_addresses_and_methods_under_the_api_are_problems(api_client, admin_user):
    http = api_client(admin_user)
    missing = {
        "type": "about:blank",
        "title": "Not found",
        "status": 404,
        "detail": "No such address in this API; see its docs.",
        "errors": [],
    }
    assert _problem(http.get("/api/v1/nowhere"), 404) == missing
    assert _problem(http.get("/api/v1/"), 404) == missing
    strict = HttpClient(enforce_csrf_checks=True)
    assert _problem(_post(strict, "/api/v1/nowhere", {}), 404) == missing
    response = http.put("/api/v1/clients/1", "{}", content_type="application/json")
    assert _problem(response, 405) == {
        "type": "about:blank",
        "title": "Method not allowed",
        "status": 405,
        "detail": "This address answers DELETE, GET, PATCH.",
        "errors": [],
    }
    assert response["Allow"] == "DELETE, GET, PATCH"


# --- pagination ----------------------------------------------------------------------------


def test_the_list_pages_with_limit_and_offset_and_counts_all(api_client, admin_user):
    # given seven clients
    made = [_client(admin_user, f"C{i}") for i in range(7)]
    http = api_client(admin_user)
    # when the first page of three is asked for
    first = http.get("/api/v1/clients?limit=3")
    # then it has the three newest and the total count
    assert first.status_code == 200
    assert first.json() == {"items": [_shown(c) for c in made[6:3:-1]], "count": 7}
    # and the last page has what is left
    last = http.get("/api/v1/clients?limit=3&offset=6").json()
    assert last == {"items": [_shown(made[0])], "count": 7}
    # and past the end the page is empty but the count stays
    assert http.get("/api/v1/clients?offset=50").json() == {"items": [], "count": 7}
    # and a search narrows both
    assert http.get("/api/v1/clients?q=c3").json() == {"items": [_shown(made[3])], "count": 1}
    # and the default page is 50
    assert len(http.get("/api/v1/clients").json()["items"]) == 7


def test_page_bounds_are_422_problems(api_client, admin_user):
    http = api_client(admin_user)
    assert _problem(http.get("/api/v1/clients?limit=501"), 422) == _invalid(
        ("limit", "Input should be less than or equal to 500")
    )
    assert _problem(http.get("/api/v1/clients?limit=0&offset=-1"), 422) == _invalid(
        ("limit", "Input should be greater than or equal to 1"),
        ("offset", "Input should be greater than or equal to 0"),
    )
    assert _problem(http.get("/api/v1/clients?offset=1000000001"), 422) == _invalid(
        ("offset", "Input should be less than or equal to 1000000000")
    )


@pytest.mark.parametrize("how_many", [3, 30])
def test_the_list_costs_the_same_queries_for_any_page_size(
    api_client, make_user, how_many, django_assert_num_queries
):
    # given a manager of team A with many clients (so the visibility filter is in play)
    meg = make_user("meg", role="manager", unit="team_a")
    for i in range(how_many):
        _client(meg, f"C{i}")
    http = api_client(meg)
    assert http.get("/api/v1/me").status_code == 200  # notes the token's last use
    # when the list is read, it takes the token, the count and the page: three queries
    with django_assert_num_queries(3):
        response = http.get("/api/v1/clients?limit=100")
    assert response.json()["count"] == how_many


# --- visibility ----------------------------------------------------------------------------


@pytest.fixture
def two_teams(make_user, admin_user):
    """Clients of team A (two sellers) and of team B, with the people who look at them."""
    sam = make_user("sam", role="sales", unit="team_a")
    sue = make_user("sue", role="sales", unit="team_a")
    bob = make_user("bob", role="sales", unit="team_b")
    return {
        "sam": sam,
        "meg": make_user("meg", role="manager", unit="team_a"),
        "rita": make_user("rita", role="manager", unit="region"),
        "admin": admin_user,
        "a1": _client(sam, "A1"),
        "a2": _client(sue, "A2"),
        "b1": _client(bob, "B1"),
    }


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("sam", ["a1"]),
        ("meg", ["a2", "a1"]),
        ("rita", ["b1", "a2", "a1"]),
        ("admin", ["b1", "a2", "a1"]),
    ],
)
def test_the_list_and_count_hold_only_what_the_caller_may_see(api_client, two_teams, who, sees):
    response = api_client(two_teams[who]).get("/api/v1/clients")
    assert response.json() == {
        "items": [_shown(two_teams[key]) for key in sees],
        "count": len(sees),
    }


@pytest.mark.parametrize("who", ["sam", "meg"])
def test_a_team_b_client_is_404_to_team_a_by_get_and_patch(api_client, two_teams, who):
    # given a user of team A and a client of team B
    http = api_client(two_teams[who])
    b1 = two_teams["b1"]
    before = _shown(b1)
    # when they read or change it by id
    read = http.get(f"/api/v1/clients/{b1.pk}")
    changed = _patch(http, f"/api/v1/clients/{b1.pk}", {"name": "Mine now"})
    # then both are the same 404 as a client that does not exist, and nothing changed
    assert _problem(read, 404) == NOT_FOUND
    assert _problem(changed, 404) == NOT_FOUND
    assert _problem(http.get("/api/v1/clients/999999"), 404) == NOT_FOUND
    assert _shown(b1) == before
    assert Event.objects.filter(type="client.changed").count() == 0
    # and a search for it finds nothing
    assert http.get("/api/v1/clients?q=B1").json() == {"items": [], "count": 0}


def test_a_seller_does_not_see_a_teammates_client(api_client, two_teams):
    a2 = two_teams["a2"]
    assert _problem(api_client(two_teams["sam"]).get(f"/api/v1/clients/{a2.pk}"), 404)


@pytest.mark.parametrize("who", ["rita", "admin"])
def test_the_region_manager_and_the_administrator_reach_team_b(api_client, two_teams, who):
    http = api_client(two_teams[who])
    b1 = two_teams["b1"]
    assert http.get(f"/api/v1/clients/{b1.pk}").json() == _shown(b1)
    response = _patch(http, f"/api/v1/clients/{b1.pk}", {"phone": "+33600000000"})
    assert response.status_code == 200
    assert response.json()["phone"] == "+33600000000"


def _subclasses(cls) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_api_schema_has_a_name_of_its_own():
    # given every router mounted
    from ninja import Schema

    import clientbase.api  # noqa: F401

    # then no two schemas share a name: OpenAPI keeps one per name, so a second would
    # silently describe the first's answers
    names = [c.__name__ for c in _subclasses(Schema) if c.__module__.startswith("clientbase.")]
    assert len(names) > 100
    assert sorted({name for name in names if names.count(name) > 1}) == []
