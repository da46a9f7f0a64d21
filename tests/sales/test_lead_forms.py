"""The lead form turns the potential typed in major units into exact minor units."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from clientbase.sales.lead_forms import LeadForm


@given(
    cents=st.integers(min_value=0, max_value=10**12),
    currency=st.sampled_from(["EUR", "JPY", "KWD", "VND"]),
)
def test_potential_is_rounded_half_up_once(cents, currency):
    typed = Decimal(cents).scaleb(-2)
    form = LeadForm(
        {
            "kind": "company",
            "name": "X",
            "language": "en",
            "currency": currency,
            "potential": str(typed),
        }
    )
    assert form.is_valid(), form.errors
    minor = form.service_fields()["potential_minor"]
    exponent = {"EUR": 2, "JPY": 0, "KWD": 3, "VND": 0}[currency]
    expected = (typed.scaleb(exponent)).quantize(Decimal(1), rounding="ROUND_HALF_UP")
    assert minor == int(expected)


def test_an_unknown_currency_leaves_the_potential_for_the_service_to_refuse():
    form = LeadForm(
        {"kind": "company", "name": "X", "language": "en", "currency": "zz", "potential": "10"}
    )
    assert form.is_valid()
    assert form.service_fields()["currency"] == "ZZ"
