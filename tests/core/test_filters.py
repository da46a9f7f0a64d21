"""Template filters for phones and money."""

from django.utils import translation

from clientbase.core.money import Money
from clientbase.core.templatetags.clientbase import money, phone


def test_phone_is_written_for_reading():
    assert phone("+33199001188") == "+33 1 99 00 11 88"
    assert phone("+79900266746") == "+7 990 026-67-46"
    assert phone("") == ""
    assert phone("not a number") == "not a number"


def test_money_follows_the_active_language():
    amount = Money(123450, "EUR")
    with translation.override("fr"):
        assert money(amount) == "1\u202f234,50\xa0€"
    with translation.override("en"):
        assert money(amount) == "€1,234.50"
    assert money(None) == ""
