"""Template filters for values people read: phone numbers and money in their locale."""

import phonenumbers
from django import template
from django.utils.translation import get_language

from clientbase.core.money import Money

register = template.Library()


@register.filter
def phone(value: str) -> str:
    """An E.164 number written as people read it: '+33 1 99 00 11 88'."""
    if not value:
        return ""
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@register.filter
def money(value: Money | None) -> str:
    """An amount in the reader's language, e.g. '1 234,50 €' in French."""
    if value is None:
        return ""
    return value.format(get_language() or "en")
