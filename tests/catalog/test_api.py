"""The catalogue over the API: amounts as decimal strings, problems with field errors."""

from decimal import Decimal

import pytest

from clientbase.catalog.models import Price, Product, PromoCode, TaxRule

BASE = "/api/v1"
FORBIDDEN = {
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
    "detail": "Your role does not allow this action.",
    "errors": [],
}


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def _errors(response, status: int = 422) -> dict:
    return {e["field"]: e["message"] for e in _problem(response, status)["errors"]}


def test_list_and_get_products(api_client, seller, licence, django_assert_num_queries):
    api = api_client(seller)
    # Token and user, role, count, then products, prices, addon links, options, their prices.
    with django_assert_num_queries(8):
        response = api.get(f"{BASE}/products")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    (product,) = body["items"]
    assert product == api.get(f"{BASE}/products/{licence.pk}").json()
    assert product["code"] == "crm-licence"
    assert product["group"] == "Licences"
    assert product["prices"] == [
        {"currency": "RUB", "cycle": "monthly", "amount": "2000.00", "setup_fee": "500.00"}
    ]
    assert product["options"][0]["code"] == "users"
    assert product["options"][0]["included_units"] == 1
    assert product["options"][0]["prices"] == [
        {"currency": "RUB", "cycle": "monthly", "unit_price": "800.00"}
    ]
    assert _problem(api.get(f"{BASE}/products/999999"), 404)["title"] == "Not found"


def test_create_and_change_a_product(api_client, biller, licence):
    api = api_client(biller)
    response = api.post(
        f"{BASE}/products",
        {
            "code": "backup",
            "name": "Daily backup",
            "kind": "addon",
            "cost": {"amount": "1.50", "currency": "EUR"},
            "addon_for": [licence.pk],
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["code"], body["kind"], body["cost"], body["addon_for"]) == (
        "backup",
        "addon",
        {"amount": "1.50", "currency": "EUR"},
        [licence.pk],
    )
    response = api.patch(
        f"{BASE}/products/{body['id']}",
        {"name": "Backup", "cost": None, "active": False},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["cost"], response.json()["active"]) == (
        "Backup",
        None,
        False,
    )


@pytest.mark.parametrize(
    ("payload", "status", "errors"),
    [
        ({"code": "crm-licence", "name": "X"}, 422, {"code": "This code is already used."}),
        (
            {"code": "x", "name": "X", "cost": {"amount": "1.234", "currency": "EUR"}},
            422,
            {"cost.amount": "EUR amounts have at most 2 decimals."},
        ),
        (
            {"code": "x", "name": "X", "cost": {"amount": "1", "currency": "ZZZ"}},
            422,
            {"cost.currency": "Unknown currency ZZZ."},
        ),
        (
            {"code": "x", "name": "X", "group_id": 99999},
            422,
            {"group_id": "No such product group."},
        ),
        ({"code": "x", "name": "X", "addon_for": [99999]}, 422, {"addon_for": "No such product."}),
    ],
)
def test_bad_product_is_a_problem_at_its_field(
    api_client, biller, licence, payload, status, errors
):
    response = api_client(biller).post(f"{BASE}/products", payload, content_type="application/json")
    assert _errors(response, status) == errors
    assert Product.objects.count() == 1


def test_invalid_json_fields(api_client, biller):
    response = api_client(biller).post(
        f"{BASE}/products",
        {"code": "x", "name": "X", "cost": {"amount": 1.5, "currency": "EUR"}},
        content_type="application/json",
    )
    assert list(_errors(response)) == ["cost.amount"]
    assert _problem(response, 422)["title"] == "Invalid request"
    response = api_client(biller).post(
        f"{BASE}/products", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert not Product.objects.exists()


def test_writes_need_catalog_manage(api_client, seller, licence):
    api = api_client(seller)
    response = api.post(
        f"{BASE}/products", {"code": "x", "name": "X"}, content_type="application/json"
    )
    assert _problem(response, 403) == FORBIDDEN
    response = api.patch(
        f"{BASE}/products/{licence.pk}", {"name": "Y"}, content_type="application/json"
    )
    assert _problem(response, 403) == FORBIDDEN
    response = api.put(f"{BASE}/products/{licence.pk}/prices", [], content_type="application/json")
    assert _problem(response, 403) == FORBIDDEN
    assert _problem(api.get(f"{BASE}/promo-codes"), 403) == FORBIDDEN
    response = api.post(
        f"{BASE}/tax-rules",
        {"name": "TVA", "country": "FR", "rate": "20"},
        content_type="application/json",
    )
    assert _problem(response, 403) == FORBIDDEN
    assert Product.objects.get().name == "CRM licence"
    assert Price.objects.count() == 1
    assert not TaxRule.objects.exists()


def test_replace_prices(api_client, biller, licence):
    api = api_client(biller)
    rows = [
        {"currency": "EUR", "cycle": "monthly", "amount": "25.00", "setup_fee": "5"},
        {"currency": "rub", "cycle": "annual", "amount": "20000"},
    ]
    response = api.put(
        f"{BASE}/products/{licence.pk}/prices", rows, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == [
        {"currency": "EUR", "cycle": "monthly", "amount": "25.00", "setup_fee": "5.00"},
        {"currency": "RUB", "cycle": "annual", "amount": "20000.00", "setup_fee": "0.00"},
    ]
    bad = [rows[0], {"currency": "EUR", "cycle": "monthly", "amount": "1"}]
    response = api.put(f"{BASE}/products/{licence.pk}/prices", bad, content_type="application/json")
    assert _errors(response) == {"1.cycle": "EUR Monthly is listed twice."}
    bad = [{"currency": "EUR", "cycle": "monthly", "amount": "0.001"}]
    response = api.put(f"{BASE}/products/{licence.pk}/prices", bad, content_type="application/json")
    assert _errors(response) == {"0.amount": "EUR amounts have at most 2 decimals."}
    bad = [{"currency": "EUR", "cycle": "weekly", "amount": "1"}]
    response = api.put(f"{BASE}/products/{licence.pk}/prices", bad, content_type="application/json")
    assert list(_errors(response)) == ["0.cycle"]
    assert sorted(Price.objects.values_list("currency", "cycle", "amount_minor")) == [
        ("EUR", "monthly", 2500),
        ("RUB", "annual", 2000000),
    ]


def test_promo_codes(api_client, biller, licence):
    api = api_client(biller)
    response = api.post(
        f"{BASE}/promo-codes",
        {"code": "ref5", "kind": "percent", "percent": "5", "recurring": True},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    ref = response.json()
    assert (ref["code"], ref["percent"], ref["amount"], ref["recurring"]) == (
        "REF5",
        "5",
        None,
        True,
    )
    response = api.post(
        f"{BASE}/promo-codes",
        {
            "code": "MINUS500",
            "kind": "fixed",
            "amount": {"amount": "500.00", "currency": "RUB"},
            "products": [licence.pk],
            "expires_on": "2025-12-31",
            "max_uses": 10,
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    fixed = response.json()
    assert (fixed["amount"], fixed["percent"], fixed["products"], fixed["expires_on"]) == (
        {"amount": "500.00", "currency": "RUB"},
        None,
        [licence.pk],
        "2025-12-31",
    )
    assert [p["code"] for p in api.get(f"{BASE}/promo-codes").json()["items"]] == [
        "MINUS500",
        "REF5",
    ]
    response = api.patch(
        f"{BASE}/promo-codes/{fixed['id']}",
        {"expires_on": None, "max_uses": 20},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert (response.json()["expires_on"], response.json()["max_uses"]) == (None, 20)
    assert api.get(f"{BASE}/promo-codes/{ref['id']}").json() == ref


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"code": "REF5", "kind": "percent", "percent": "3"}, "code"),
        ({"code": "X", "kind": "percent", "percent": "101"}, "percent"),
        ({"code": "X", "kind": "percent"}, "percent"),
        ({"code": "X", "kind": "fixed"}, "amount"),
        (
            {"code": "X", "kind": "fixed", "amount": {"amount": "1", "currency": "QQQ"}},
            "amount.currency",
        ),
        (
            {
                "code": "X",
                "kind": "percent",
                "percent": "1",
                "starts_on": "2025-02-01",
                "expires_on": "2025-01-01",
            },
            "expires_on",
        ),
    ],
)
def test_bad_promo_code_is_a_problem(api_client, biller, payload, field):
    api = api_client(biller)
    api.post(
        f"{BASE}/promo-codes",
        {"code": "REF5", "kind": "percent", "percent": "5"},
        content_type="application/json",
    )
    response = api.post(f"{BASE}/promo-codes", payload, content_type="application/json")
    assert list(_errors(response)) == [field]
    assert list(PromoCode.objects.values_list("code", "percent")) == [("REF5", Decimal(5))]


def test_tax_rules(api_client, biller, seller):
    api = api_client(biller)
    response = api.post(
        f"{BASE}/tax-rules",
        {"name": "TVA", "country": "fr", "rate": "20"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json() == {
        "id": response.json()["id"],
        "name": "TVA",
        "country": "FR",
        "region": "",
        "rate": "20",
    }
    response = api.post(
        f"{BASE}/tax-rules",
        {"name": "X", "country": "XX", "rate": "5"},
        content_type="application/json",
    )
    assert _errors(response) == {"country": "Unknown country code XX."}
    response = api.post(
        f"{BASE}/tax-rules",
        {"name": "X", "country": "FR", "rate": "5"},
        content_type="application/json",
    )
    assert _errors(response) == {"region": "There is already a rule for this country and region."}
    listed = api_client(seller).get(f"{BASE}/tax-rules").json()
    assert [(r["country"], r["rate"]) for r in listed["items"]] == [("FR", "20")]
