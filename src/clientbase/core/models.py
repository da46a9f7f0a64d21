"""Shared data: number series, newsfeed events, audit log, idempotency keys, cron runs."""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

from clientbase.core import clock


class Owned(models.Model):
    """A record that belongs to a person and an org unit, so visibility can scope it."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    org_unit = models.ForeignKey(
        "accounts.OrgUnit",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("org unit"),
    )

    # Path from this model to the fields `owner` and `org_unit`; "" means on itself.
    visibility_via = ""

    class Meta:
        abstract = True


class AppendOnlyError(RuntimeError):
    """Somebody tried to change or delete a row that history keeps for good."""


class AppendOnlyQuerySet(models.QuerySet):
    """A queryset that can add and read rows but never change or delete them."""

    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are never updated")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are never deleted")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError(f"{self.model.__name__} rows are never updated")


class AppendOnly(models.Model):
    """Base of history rows: written once, in the transaction of the action they record.

    Each row keeps who acted and the owner and unit of what it is about, so visibility
    scopes history like the records themselves.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    org_unit = models.ForeignKey(
        "accounts.OrgUnit", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are never updated")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are never deleted")


class NumberSeries(models.Model):
    """A gapless counter for one kind of document number (invoice, ticket, client…)."""

    key = models.SlugField(_("series"), max_length=40, unique=True)
    prefix = models.CharField(_("prefix"), max_length=20, blank=True)
    padding = models.PositiveSmallIntegerField(_("digits"), default=0)
    next_value = models.PositiveBigIntegerField(_("next value"), default=1)

    class Meta:
        verbose_name = _("number series")
        verbose_name_plural = _("number series")

    def __str__(self) -> str:
        return self.key


class EventCategory(models.TextChoices):
    """Newsfeed filters, as Billing Care groups its history."""

    ACCOUNT = "account", _("Account")
    AR = "ar", _("A/R")
    PAYMENTS = "payments", _("Payments")
    CHARGES = "charges", _("Charges")
    SALES = "sales", _("Sales")
    SUPPORT = "support", _("Support")
    SECURITY = "security", _("Security")
    SYSTEM = "system", _("System")


class Event(AppendOnly):
    """One line of a newsfeed: a business action on an account, as it happened."""

    # An account's history is seen by whoever sees the account now.
    visibility_via = ("client", "")

    occurred_at = models.DateTimeField(_("time"), default=clock.now, db_index=True)
    client = models.ForeignKey(
        "clients.Client",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("account"),
    )
    category = models.CharField(_("category"), max_length=16, choices=EventCategory.choices)
    type = models.CharField(_("type"), max_length=64, db_index=True)
    amount_minor = models.BigIntegerField(_("amount"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    reference = models.CharField(_("reference"), max_length=64, blank=True, db_index=True)
    subject_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    subject_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        base_manager_name = "objects"
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["client", "-occurred_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(category__in=EventCategory.values), name="event_category_valid"
            )
        ]

    def __str__(self) -> str:
        return self.message

    @property
    def message(self) -> str:
        """The event in words, in the reader's language."""
        from clientbase.core.events import describe

        return describe(self)

    @property
    def amount(self):
        """The amount as Money, when the event moved money."""
        from clientbase.core.money import Money

        if self.amount_minor is None or not self.currency:
            return None
        return Money(self.amount_minor, self.currency)


class AuditAction(models.TextChoices):
    """What happened to a record."""

    CREATE = "create", _("Created")
    UPDATE = "update", _("Changed")
    DELETE = "delete", _("Deleted")


class AuditEntry(AppendOnly):
    """Who changed which record when, with each field's value before and after."""

    at = models.DateTimeField(_("time"), default=clock.now, db_index=True)
    action = models.CharField(_("action"), max_length=8, choices=AuditAction.choices)
    object_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, related_name="+", verbose_name=_("record type")
    )
    object_id = models.CharField(_("record id"), max_length=64, db_index=True)
    object_repr = models.CharField(_("record"), max_length=200)
    changes = models.JSONField(_("changes"), default=dict, encoder=DjangoJSONEncoder)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        base_manager_name = "objects"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(action__in=AuditAction.values), name="audit_action_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.object_repr}"

    @property
    def shown_changes(self) -> dict:
        """The changes worth reading: a new record's empty fields are left out."""
        if self.action != AuditAction.CREATE:
            return self.changes
        # Entries written before audit_create left them out still hold them.
        from clientbase.core.audit import is_empty

        return {k: v for k, v in self.changes.items() if not is_empty(v.get("after"))}


class IdempotencyKey(models.Model):
    """A POST seen with an Idempotency-Key, and the response it got, for safe retries."""

    class State(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    principal = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=8, choices=State.choices, default=State.RUNNING)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    response_body = models.BinaryField(null=True)
    created_at = models.DateTimeField(default=clock.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["principal", "key"], name="idempotency_key_unique"),
            models.CheckConstraint(
                condition=models.Q(state__in=["running", "done"]), name="idempotency_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.key


class CronRun(models.Model):
    """One run of one daily job, kept as the automation log."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        OK = "ok", _("Succeeded")
        FAILED = "failed", _("Failed")

    job = models.CharField(_("job"), max_length=64, db_index=True)
    run_date = models.DateField(_("for day"))
    started_at = models.DateTimeField(_("started"), default=clock.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.RUNNING
    )
    result = models.TextField(_("result"), blank=True)

    class Meta:
        verbose_name = _("automation run")
        verbose_name_plural = _("automation runs")
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["running", "ok", "failed"]),
                name="cronrun_status_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.job} {self.run_date}"

    @property
    def duration(self):
        """How long the run took, when it has finished."""
        return self.finished_at - self.started_at if self.finished_at else None


class CustomField(models.Model):
    """A field an administrator adds to a record type, such as a client's 1C code (CUS-7)."""

    class Type(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")
        CHOICE = "choice", _("Choice")
        BOOLEAN = "boolean", _("Yes/no")
        SECRET = "secret", _("Secret")

    class AppliesTo(models.TextChoices):
        CLIENT = "client", _("Clients")

    applies_to = models.CharField(
        _("applies to"), max_length=16, choices=AppliesTo.choices, default=AppliesTo.CLIENT
    )
    code = models.SlugField(
        _("code"),
        max_length=40,
        help_text=_("The name used in the API, imports and exports, e.g. code_1c."),
    )
    label = models.CharField(_("label"), max_length=100)
    type = models.CharField(_("type"), max_length=8, choices=Type.choices, default=Type.TEXT)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    help_text = models.CharField(_("help text"), max_length=200, blank=True)
    for_individuals = models.BooleanField(_("for individuals"), default=True)
    for_companies = models.BooleanField(_("for companies"), default=True)
    in_simple_form = models.BooleanField(_("shown in the simple form"), default=False)
    required = models.BooleanField(_("always required"), default=False)
    # Required only when another field has a given value, e.g. when country is RU.
    required_when_field = models.CharField(_("required when field"), max_length=40, blank=True)
    required_when_value = models.CharField(_("has the value"), max_length=100, blank=True)
    position = models.PositiveSmallIntegerField(_("order in the form"), default=0)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        ordering = ["applies_to", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["applies_to", "code"], name="customfield_code_unique"),
            models.CheckConstraint(
                condition=models.Q(
                    type__in=["text", "number", "date", "choice", "boolean", "secret"]
                ),
                name="customfield_type_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(applies_to__in=["client"]), name="customfield_applies_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.label


def _document_path(document: "Document", filename: str) -> str:
    return f"documents/{document.sha256[:2]}/{document.sha256}"


class Document(models.Model):
    """A file or photo attached to a client (and, later, to a deal or ticket) (CUS-17)."""

    visibility_via = "client"

    client = models.ForeignKey(
        "clients.Client",
        on_delete=models.PROTECT,
        related_name="documents",
        verbose_name=_("client"),
    )
    name = models.CharField(_("file name"), max_length=200)
    description = models.CharField(_("description"), max_length=500, blank=True)
    file = models.FileField(_("file"), upload_to=_document_path, max_length=200)
    content_type = models.CharField(_("type"), max_length=100)
    size = models.PositiveBigIntegerField(_("size"))
    sha256 = models.CharField(max_length=64, db_index=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("by")
    )
    uploaded_at = models.DateTimeField(_("uploaded"), default=clock.now)

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["client", "-uploaded_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_image(self) -> bool:
        """Whether the file is a photo the browser can show inline."""
        return self.content_type in {"image/jpeg", "image/png", "image/gif", "image/webp"}
