"""Data of the marketing module: message templates and the SMS outbox."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clientbase.core import clock


class MessageTemplate(models.Model):
    """An email or SMS text with merge tags, applied from any card (MKT-1)."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")

    name = models.CharField(_("name"), max_length=100)
    channel = models.CharField(_("channel"), max_length=5, choices=Channel.choices)
    language = models.CharField(_("language"), max_length=8, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("text"))
    active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("changed"), default=clock.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["channel", "name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__in=["email", "sms"]), name="template_channel"
            ),
            models.UniqueConstraint(
                fields=["channel", "name", "language"], name="template_name_per_channel"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SmsMessage(models.Model):
    """A text message handed to the SMS gateway, kept with what the gateway said."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    to = models.CharField(_("to"), max_length=32)
    body = models.TextField(_("text"))
    status = models.CharField(
        _("status"), max_length=6, choices=Status.choices, default=Status.QUEUED
    )
    error = models.CharField(_("error"), max_length=500, blank=True)
    client = models.ForeignKey(
        "clients.Client", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    lead = models.ForeignKey(
        "sales.Lead", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=clock.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "sent", "failed"]), name="sms_status"
            )
        ]

    def __str__(self) -> str:
        return f"{self.to}: {self.body[:30]}"
