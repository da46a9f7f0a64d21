"""SMS: how long a text is in segments, and the gateway backend chosen by `SMS_BACKEND`.

As with Django's email backends, the gateway is a class named in a setting. Two ship here:
`OutboxBackend` (the default) keeps each message in `sms.outbox` and marks it sent, which is
what tests and a fresh install want; `ConsoleBackend` also prints it. A real gateway is a
subclass of `BaseBackend` whose `send()` raises `SmsError` when the gateway refuses.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from clientbase.core import clock

# The GSM 03.38 alphabet: a text made only of these goes as 7-bit (160 characters a
# segment); anything else (Cyrillic, Vietnamese, emoji) as UCS-2 (70 a segment).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# These take two septets (an escape and the character).
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")

# Messages the outbox backend has taken, newest last (as django.core.mail.outbox).
outbox: list = []


class SmsError(Exception):
    """The gateway refused or failed to take a message."""


@dataclass(frozen=True)
class SmsLength:
    """How a text travels: its length in units, the encoding and the number of segments."""

    units: int
    encoding: str
    segments: int
    per_segment: int


def sms_length(text: str) -> SmsLength:
    """The length of a text in GSM-7 septets or UCS-2 units and the segments it needs."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text):
        units = sum(2 if c in _GSM_EXTENDED else 1 for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        # Characters beyond the basic plane take two UTF-16 units.
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    if units <= single:
        return SmsLength(units, encoding, 1 if units else 0, single)
    return SmsLength(units, encoding, -(-units // multi), multi)


class BaseBackend(ABC):
    """A gateway: `send()` hands over one message or raises SmsError."""

    @abstractmethod
    def send(self, to: str, body: str) -> None:
        """Hand one text to the gateway."""


class OutboxBackend(BaseBackend):
    """Keeps messages in `clientbase.marketing.sms.outbox`; nothing leaves the machine."""

    def send(self, to: str, body: str) -> None:
        outbox.append((to, body))


class ConsoleBackend(OutboxBackend):
    """Prints each message to standard output, for development."""

    def send(self, to: str, body: str) -> None:
        super().send(to, body)
        sys.stdout.write(f"SMS to {to}:\n{body}\n{'-' * 40}\n")
        sys.stdout.flush()


def backend() -> BaseBackend:
    """The gateway named by the SMS_BACKEND setting."""
    return import_string(settings.SMS_BACKEND)()


def sms_deliver(sms_id: int) -> None:
    """Hand a queued message to the gateway once and record what it said."""
    from clientbase.marketing.models import SmsMessage

    with transaction.atomic():
        sms = SmsMessage.objects.select_for_update().filter(pk=sms_id).first()
        if sms is None or sms.status != SmsMessage.Status.QUEUED:
            return
        try:
            backend().send(sms.to, sms.body)
        except SmsError as failure:
            sms.status, sms.error = SmsMessage.Status.FAILED, str(failure)[:500]
        else:
            sms.status, sms.sent_at = SmsMessage.Status.SENT, clock.now()
        sms.save(update_fields=["status", "error", "sent_at"])
