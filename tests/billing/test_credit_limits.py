"""Credit limits (BIL-14): refusal with the amount over, thresholds warning once per crossing."""

import pytest

from clientbase.billing import credit, services
from clientbase.billing.models import CreditLimit, Order, Service
from clientbase.catalog.models import Cycle
from clientbase.core.errors import ServiceError
from clientbase.core.models import Event

from .conftest import billing_counts, eur, rub


@pytest.fixture
def limited(rub_client, clerk):
    """A client who may owe 10000.00 RUB, warned at 5000.00 and at 80 %."""
    credit.credit_limit_set(
        by=clerk,
        client=rub_client,
        currency="RUB",
        limit=rub("10000.00"),
        fixed_thresholds=[rub("5000.00")],
        percent_thresholds=[80],
    )
    return rub_client


def warnings(client) -> list[str]:
    return [e.details["threshold"] for e in Event.objects.filter(type="credit.threshold",
                                                                 client=client).order_by("id")]  # fmt: skip


def test_an_invoice_past_the_limit_is_refused_with_the_amount_over(limited, issue):
    issue(limited, ("Доступ", "9000.00"))
    before = billing_counts()
    with pytest.raises(ServiceError) as refused:
        issue(limited, ("Лицензии", "1500.00"))
    assert refused.value.message_dict == {
        "credit_limit": ["This would pass the client's credit limit of 10000.00 RUB by 500.00 RUB."]
    }
    # the draft stays a draft; nothing was numbered or posted
    after = billing_counts()
    assert (after["issued"], after["ledger"]) == (before["issued"], before["ledger"])
    # up to the limit exactly is allowed
    issue(limited, ("Лицензии", "1000.00"))


def test_an_order_past_the_limit_is_refused_and_nothing_is_created(limited, clerk, catalog):
    order = services.order_create(
        by=clerk, client=limited, items=[services.ItemSpec(catalog.hotel, Cycle.ANNUAL)]
    )
    with pytest.raises(ServiceError) as refused:
        services.order_accept(by=clerk, order=order)
    # 25000.00 a year and a 2000.00 setup fee: 17000.00 over the 10000.00 limit
    assert refused.value.message_dict == {
        "credit_limit": [
            "This would pass the client's credit limit of 10000.00 RUB by 17000.00 RUB."
        ]
    }
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert Service.objects.count() == 0


def test_credit_held_and_an_override_let_more_through(limited, clerk, issue):
    services.credit_adjust(by=clerk, client=limited, amount=rub("3000.00"), reason="Prepaid")
    issue(limited, ("Доступ", "12000.00"))  # owes 12000 less 3000 of credit
    assert credit.owed(limited, "RUB") == rub("9000.00")
    credit.credit_limit_set(by=clerk, client=limited, currency="RUB", limit=rub("10000.00"),
                            enforce=False)  # fmt: skip
    issue(limited, ("Лицензии", "4000.00"))
    (view,) = credit.limits_of(limited)
    assert (view.owed, view.beyond, view.limit.enforce) == (rub("13000.00"), rub("3000.00"), False)


def test_a_credit_top_up_is_never_refused(limited, clerk, issue):
    issue(limited, ("Доступ", "10000.00"))
    top_up = services.credit_top_up_invoice(by=clerk, client=limited, amount=rub("500.00"))
    assert top_up.status == "unpaid"


def test_thresholds_warn_once_per_crossing(limited, issue, pay, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = issue(limited, ("Доступ", "6000.00"))
    assert warnings(limited) == ["5000.00 RUB"]
    with django_capture_on_commit_callbacks(execute=True):
        issue(limited, ("Доступ", "1000.00"))
    assert warnings(limited) == ["5000.00 RUB"]  # still above it: no second warning
    with django_capture_on_commit_callbacks(execute=True):
        issue(limited, ("Доступ", "1500.00"))
    assert warnings(limited) == ["5000.00 RUB", "8000.00 RUB"]
    assert CreditLimit.objects.get().crossed == [500000, 800000]
    # paying brings the balance below both; crossing again warns again
    with django_capture_on_commit_callbacks(execute=True):
        pay(limited, rub("6000.00"), first)
    assert CreditLimit.objects.get().crossed == []
    with django_capture_on_commit_callbacks(execute=True):
        issue(limited, ("Доступ", "3000.00"))
    assert warnings(limited) == ["5000.00 RUB", "8000.00 RUB", "5000.00 RUB"]


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"limit": rub("100.00"), "floor": rub("200.00")},
         {"floor": ["The floor cannot be above the limit."]}),
        ({"limit": rub("100.00"), "fixed_thresholds": [rub("150.00")]},
         {"fixed_thresholds": ["A threshold lies between the floor and the limit."]}),
        ({"limit": None, "percent_thresholds": [80]},
         {"percent_thresholds": ["Percentage thresholds need a limit to be a percentage of."]}),
        ({"limit": rub("100.00"), "percent_thresholds": [0]},
         {"percent_thresholds": ["A percentage is between 1 and 100."]}),
        ({"limit": eur("100.00")}, {"limit": ["Give every amount in RUB."]}),
    ],
)  # fmt: skip
def test_a_limit_that_cannot_work_is_refused(rub_client, clerk, fields, errors):
    with pytest.raises(ServiceError) as refused:
        credit.credit_limit_set(by=clerk, client=rub_client, currency="RUB", **fields)
    assert refused.value.message_dict == errors
    assert CreditLimit.objects.count() == 0


def test_the_limit_form_on_the_profile(signed_in, clerk, rub_client):
    http = signed_in(clerk)
    response = http.post(
        f"/billing/clients/{rub_client.pk}/credit/limit/",
        {"currency": "rub", "limit": "10000", "floor": "", "fixed_thresholds": "5000; 7000",
         "percent_thresholds": "90", "enforce": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    limit = CreditLimit.objects.get()
    assert (limit.currency, limit.limit_minor, limit.fixed_thresholds, limit.percent_thresholds,
            limit.enforce) == ("RUB", 1000000, [500000, 700000], [90], True)  # fmt: skip
    page = http.get(f"/clients/{rub_client.pk}/?tab=transactions").content.decode()
    assert 'id="credit-limits"' in page
    response = http.post(
        f"/billing/clients/{rub_client.pk}/credit/limit/",
        {"currency": "RUB", "limit": "10000", "percent_thresholds": "ninety"},
    )
    assert response.status_code == 302
    assert CreditLimit.objects.get().percent_thresholds == [90]


def test_the_credit_limit_api(api_client, clerk, rub_client, make_user):
    http = api_client(clerk)
    url = f"/api/v1/clients/{rub_client.pk}/credit-limits/RUB"
    response = http.put(
        url,
        {"limit": "10000.00", "fixed_thresholds": ["5000"], "percent_thresholds": [90]},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = http.get(f"/api/v1/clients/{rub_client.pk}/credit-limits").json()
    assert body == [
        {
            "currency": "RUB",
            "limit": {"amount": "10000.00", "currency": "RUB"},
            "floor": {"amount": "0.00", "currency": "RUB"},
            "fixed_thresholds": [{"amount": "5000.00", "currency": "RUB"}],
            "percent_thresholds": [90],
            "thresholds": [
                {"amount": "5000.00", "currency": "RUB"},
                {"amount": "9000.00", "currency": "RUB"},
            ],
            "enforce": True,
            "owed": {"amount": "0.00", "currency": "RUB"},
            "beyond_limit": {"amount": "0.00", "currency": "RUB"},
        }
    ]
    refused = http.put(url, {"limit": "10", "floor": "20"}, content_type="application/json")
    assert refused.status_code == 422
    # a seller who does not see the client does not learn that it has a limit
    seller = api_client(make_user("seller", role="sales", unit="company"))
    assert seller.delete(url).status_code == 404
    assert CreditLimit.objects.count() == 1
    assert http.delete(url).status_code == 204
    assert CreditLimit.objects.count() == 0
