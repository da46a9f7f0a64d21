"""The client base: who the company sells to, bills and supports."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from clientbase.core import clock
from clientbase.core.models import AppendOnly, Owned


class LiveClientManager(models.Manager):
    """Clients still in the base: neither merged into another nor deleted."""

    def get_queryset(self):
        return super().get_queryset().filter(merged_into=None, deleted_at=None)


class Client(Owned):
    """An account: a person (B2C) or a company (B2B)."""

    audit_skip_fields = ("version", "custom_search")

    class Kind(models.TextChoices):
        INDIVIDUAL = "individual", _("Individual")
        COMPANY = "company", _("Company")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        INACTIVE = "inactive", _("Inactive")
        CLOSED = "closed", _("Closed")

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        POST = "post", _("Post")

    class Notice(models.TextChoices):
        INVOICES = "invoices", _("Invoices and receipts")
        REMINDERS = "reminders", _("Payment reminders")
        SERVICE = "service", _("Service notices")
        NEWSLETTER = "newsletter", _("Newsletters")

    class PaymentMethod(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", _("Bank transfer")
        CARD = "card", _("Card")
        CASH = "cash", _("Cash")
        OTHER = "other", _("Other")

    number = models.CharField(_("client number"), max_length=32, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.COMPANY)
    # The display name: the company's name, or the person's full name (kept by the services).
    name = models.CharField(_("name"), max_length=200)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    company_name = models.CharField(_("company name"), max_length=200, blank=True)
    kpp = models.CharField(_("KPP"), max_length=9, blank=True)
    national_id = models.CharField(_("national id"), max_length=32, blank=True)
    email = models.EmailField(_("email"), max_length=254)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    tax_id = models.CharField(_("tax id"), max_length=32, blank=True)
    street = models.CharField(_("street"), max_length=200, blank=True)
    postcode = models.CharField(_("postcode"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    language = models.CharField(_("language"), max_length=8, default="en")
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    status_since = models.DateField(_("status since"), null=True, blank=True)
    # Billing settings (CUS-8)
    payment_method = models.CharField(
        _("payment method"),
        max_length=16,
        choices=PaymentMethod.choices,
        default=PaymentMethod.BANK_TRANSFER,
    )
    group = models.ForeignKey(
        "ClientGroup",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="clients",
        verbose_name=_("client group"),
    )
    tax_exempt = models.BooleanField(_("tax exempt"), default=False)
    separate_invoices = models.BooleanField(_("separate invoice per service"), default=False)
    # Co-terming: new services' first period is prorated to end the day before this day of
    # a month (1 = periods end on month ends), so every invoice covers the same dates.
    billing_day = models.PositiveSmallIntegerField(
        _("align services to billing day"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(28)],
    )
    auto_apply_credit = models.BooleanField(_("apply credit to new invoices"), default=True)
    suspend_exempt_until = models.DateField(
        _("no automatic suspension until"), null=True, blank=True
    )
    late_fee_exempt = models.BooleanField(_("no late fees"), default=False)
    no_overdue_notices = models.BooleanField(_("no overdue notices"), default=False)
    no_card_autopay = models.BooleanField(_("no automatic card payments"), default=False)
    # Ownership and provenance (CUS-9); the owner is the account manager.
    sales_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sales manager"),
    )
    source = models.CharField(_("source"), max_length=100, blank=True)
    utm_source = models.CharField(_("UTM source"), max_length=100, blank=True)
    utm_medium = models.CharField(_("UTM medium"), max_length=100, blank=True)
    utm_campaign = models.CharField(_("UTM campaign"), max_length=100, blank=True)
    referred_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="referrals",
        verbose_name=_("referred by"),
    )
    tags = models.CharField(_("tags"), max_length=200, blank=True)
    # Marketing consent (CUS-10)
    consent_email = models.BooleanField(_("email marketing"), default=False)
    consent_sms = models.BooleanField(_("SMS marketing"), default=False)
    consent_api = models.BooleanField(_("marketing through partners' APIs"), default=False)
    # Subscriber preferences (CUS-10): how to reach the client, and which notices it refuses.
    preferred_channel = models.CharField(
        _("preferred channel"), max_length=8, choices=Channel.choices, default=Channel.EMAIL
    )
    notices_opted_out = models.JSONField(_("notices opted out of"), default=list, blank=True)
    # Hierarchy (CUS-14): a member company of a group; billing may send its charges up.
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="members",
        verbose_name=_("parent company"),
    )
    bill_to_parent = models.BooleanField(_("charges go to the parent company"), default=False)
    # Custom field values by field code (CUS-7); `custom_search` holds the searchable ones.
    custom = models.JSONField(_("custom fields"), default=dict, blank=True)
    custom_search = models.TextField(blank=True, default="")
    # A merged client stays as a pointer to its survivor; a deleted one stays for history.
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_from",
        verbose_name=_("merged into"),
    )
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)
    # Bumped by every change, so an edit made on an outdated copy is refused, not lost.
    version = models.PositiveIntegerField(_("version"), default=1)
    created_at = models.DateTimeField(_("created"), default=clock.now, db_index=True)

    objects = LiveClientManager()
    # Every row, merged and deleted ones included: for history, merge and numbering.
    everything = models.Manager()

    class Meta:
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        ordering = ["-id"]
        constraints = [
            # Unique among live clients: a merged or deleted client frees its email.
            models.UniqueConstraint(
                Lower("email"),
                name="client_email_unique_ci",
                condition=models.Q(merged_into=None, deleted_at=None),
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["individual", "company"]), name="client_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["active", "inactive", "closed"]),
                name="client_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(preferred_channel__in=["email", "sms", "post"]),
                name="client_channel_valid",
            ),
        ]
        indexes = [
            models.Index(Lower("name"), "id", name="client_name_lower"),
            models.Index(fields=["status", "-id"], name="client_status_id"),
            # The duplicate check wants the newest few with an identifier: with the id in the
            # index PostgreSQL stops after them instead of reading hundreds of rows that share
            # a phone (SQLite's indexes hold the rowid anyway). Not db_index, which on
            # PostgreSQL adds a second, pattern index that no query uses.
            models.Index(fields=["phone", "-id"], name="client_phone_id"),
            models.Index(fields=["tax_id", "-id"], name="client_tax_id_id"),
            models.Index(fields=["national_id", "-id"], name="client_national_id_id"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"

    def audit_masked(self, values: dict) -> dict:
        """The audit snapshot with secret custom values masked."""
        from clientbase.core.customfields import masked_for_audit

        if values.get("custom"):
            values["custom"] = masked_for_audit(values["custom"])
        return values

    @property
    def notices_opted_out_labels(self) -> list[str]:
        """The notices the client refuses, in the reader's language."""
        return [str(Client.Notice(n).label) for n in self.notices_opted_out]

    @property
    def is_live(self) -> bool:
        """Whether the client is still in the base (not merged away, not deleted)."""
        return self.merged_into_id is None and self.deleted_at is None


class ClientGroup(models.Model):
    """A group of clients with common terms (e.g. "Reference clients", "Wholesale")."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    colour = models.CharField(_("colour"), max_length=7, default="#6c757d")

    class Meta:
        verbose_name = _("client group")
        verbose_name_plural = _("client groups")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SecurityQuestion(models.Model):
    """A question staff ask on the phone; only a hash of the answer is kept (CUS-11)."""

    client = models.ForeignKey(
        Client,
        on_delete=models.CASCADE,
        related_name="security_questions",
        verbose_name=_("client"),
    )
    question = models.CharField(_("question"), max_length=200)
    answer_hash = models.CharField(max_length=200)
    created_at = models.DateTimeField(_("added"), default=clock.now)

    visibility_via = "client"
    audit_secret_fields = ("answer_hash",)

    class Meta:
        verbose_name = _("security question")
        verbose_name_plural = _("security questions")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.question


class Note(AppendOnly):
    """An account note: never edited or deleted, only commented on (threaded one level)."""

    visibility_via = "client"

    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="notes", verbose_name=_("client")
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="comments",
        verbose_name=_("comment on"),
    )
    body = models.TextField(_("note"))
    important = models.BooleanField(_("important"), default=False)
    created_at = models.DateTimeField(_("written"), default=clock.now, db_index=True)

    class Meta:
        verbose_name = _("note")
        verbose_name_plural = _("notes")
        ordering = ["-created_at", "-id"]
        base_manager_name = "objects"
        indexes = [models.Index(fields=["client", "parent", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=~models.Q(body=""), name="note_body_not_empty"),
        ]

    def __str__(self) -> str:
        return self.body[:60]


class DeferredAction(models.Model):
    """A change scheduled for a day: pending until it runs, then done or failed (CUS-13)."""

    class Kind(models.TextChoices):
        STATUS = "status", _("Status change")
        SERVICE = "service", _("Service change")

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        DONE = "done", _("Done")
        ERROR = "error", _("Error")

    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="deferred_actions", verbose_name=_("client")
    )
    kind = models.CharField(_("action"), max_length=16, choices=Kind.choices)
    params = models.JSONField(_("details"), default=dict)
    due_on = models.DateField(_("due on"), db_index=True)
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.PENDING)
    result = models.TextField(_("result"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("by")
    )
    created_at = models.DateTimeField(_("created"), default=clock.now)
    executed_at = models.DateTimeField(_("executed"), null=True, blank=True)

    visibility_via = "client"

    class Meta:
        verbose_name = _("deferred action")
        verbose_name_plural = _("deferred actions")
        ordering = ["due_on", "id"]
        indexes = [models.Index(fields=["state", "due_on"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=["pending", "done", "error"]),
                name="deferredaction_state_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["status", "service"]),
                name="deferredaction_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.due_on}"


class Contact(models.Model):
    """A person to talk to at a client; the first one names an account without a company."""

    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="contacts", verbose_name=_("client")
    )
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100)
    position = models.CharField(_("position"), max_length=100, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True)
    created_at = models.DateTimeField(_("added"), default=clock.now)

    visibility_via = "client"

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ContactPhone(models.Model):
    """One phone number of a contact; one number per type."""

    class Type(models.TextChoices):
        MOBILE = "mobile", _("Mobile")
        WORK = "work", _("Work")
        HOME = "home", _("Home")
        FAX = "fax", _("Fax")

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="phones", verbose_name=_("contact")
    )
    type = models.CharField(_("type"), max_length=8, choices=Type.choices)
    number = models.CharField(_("number"), max_length=32, db_index=True)

    class Meta:
        verbose_name = _("phone")
        verbose_name_plural = _("phones")
        ordering = ["type"]
        constraints = [
            models.UniqueConstraint(fields=["contact", "type"], name="contactphone_one_per_type"),
            models.CheckConstraint(
                condition=models.Q(type__in=["mobile", "work", "home", "fax"]),
                name="contactphone_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class Address(models.Model):
    """A typed address of a client: where to write, bill, deliver or work."""

    class Type(models.TextChoices):
        CORRESPONDENCE = "correspondence", _("Correspondence")
        BILLING = "billing", _("Billing")
        DELIVERY = "delivery", _("Delivery")
        SITE = "site", _("Site")

    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="addresses", verbose_name=_("client")
    )
    type = models.CharField(_("type"), max_length=16, choices=Type.choices)
    line1 = models.CharField(_("street and number"), max_length=200)
    line2 = models.CharField(_("address line 2"), max_length=200, blank=True)
    postcode = models.CharField(_("postcode"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100)
    region = models.CharField(_("region"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2)
    latitude = models.DecimalField(
        _("latitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    longitude = models.DecimalField(
        _("longitude"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    notes = models.CharField(_("notes"), max_length=500, blank=True)

    visibility_via = "client"

    class Meta:
        verbose_name = _("address")
        verbose_name_plural = _("addresses")
        ordering = ["type", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(type__in=["correspondence", "billing", "delivery", "site"]),
                name="address_type_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(latitude__isnull=True)
                | models.Q(latitude__gte=-90, latitude__lte=90),
                name="address_latitude_range",
            ),
            models.CheckConstraint(
                condition=models.Q(longitude__isnull=True)
                | models.Q(longitude__gte=-180, longitude__lte=180),
                name="address_longitude_range",
            ),
        ]

    def __str__(self) -> str:
        return ", ".join(
            p for p in [self.line1, self.line2, f"{self.postcode} {self.city}".strip()] if p
        )


class ImportMapping(models.Model):
    """A column mapping saved for one source of files (e.g. "1C export"), shared by all staff."""

    source = models.CharField(_("source"), max_length=100, unique=True)
    # Header label -> client field name ("" for a column left out).
    columns = models.JSONField(_("columns"), default=dict)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("by")
    )
    updated_at = models.DateTimeField(_("saved"), default=clock.now)

    class Meta:
        verbose_name = _("import mapping")
        verbose_name_plural = _("import mappings")
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.source
