"""Data of the sales CRM: pipelines and stages, leads, deals, activities, quotes, contracts,
lead distribution, web forms and KPI targets."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clientbase.core import clock
from clientbase.core.models import Owned


class Pipeline(models.Model):
    """A sequence of stages that leads or deals move through on a kanban board."""

    class Kind(models.TextChoices):
        LEAD = "lead", _("Leads")
        DEAL = "deal", _("Deals")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("for"), max_length=4, choices=Kind.choices)
    is_default = models.BooleanField(_("default pipeline"), default=False)
    position = models.PositiveSmallIntegerField(_("place in the list"), default=0)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["kind", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["lead", "deal"]), name="pipeline_kind"),
            models.UniqueConstraint(fields=["kind", "name"], name="pipeline_name_per_kind"),
            models.UniqueConstraint(
                fields=["kind"], condition=Q(is_default=True), name="one_default_pipeline_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    """A column of a pipeline; its state says what entering it means for the record."""

    class State(models.TextChoices):
        # Lead pipelines: the lead's status follows the state of its stage.
        NEW = "new", _("New")
        IN_PROGRESS = "in_progress", _("In progress")
        APPOINTMENT = "appointment", _("Appointment")
        CUSTOMER = "customer", _("Customer")
        DEAD = "dead", _("Dead")
        # Deal pipelines.
        OPEN = "open", _("Open")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    LEAD_STATES = ("new", "in_progress", "appointment", "customer", "dead")
    DEAL_STATES = ("open", "won", "lost")

    class Requirement(models.TextChoices):
        """What a record must have before it may enter the stage."""

        VALUE = "value", _("a value")
        EXPECTED_CLOSE = "expected_close", _("an expected close date")
        CLIENT = "client", _("a client (a lead converted first)")
        OWNER = "owner", _("an owner")
        QUOTE = "quote", _("a quote")
        CONTACT = "contact", _("an email or a phone")

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveSmallIntegerField(_("place on the board"), default=0)
    state = models.CharField(_("meaning"), max_length=12, choices=State.choices)
    probability = models.PositiveSmallIntegerField(
        _("probability, %"),
        default=0,
        help_text=_("The share of a deal's value the forecast counts while it is in this stage."),
    )
    requires = models.JSONField(
        _("required to enter"),
        default=list,
        blank=True,
        help_text=_("A move into this stage is refused until the record has these."),
    )
    colour = models.CharField(_("colour"), max_length=7, default="#6c757d")

    class Meta:
        ordering = ["pipeline", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    state__in=[
                        "new",
                        "in_progress",
                        "appointment",
                        "customer",
                        "dead",
                        "open",
                        "won",
                        "lost",
                    ]
                ),
                name="stage_state",
            ),
            models.CheckConstraint(
                condition=Q(probability__lte=100), name="stage_probability_in_range"
            ),
            models.UniqueConstraint(fields=["pipeline", "name"], name="stage_name_per_pipeline"),
        ]

    def __str__(self) -> str:
        return self.name


class StageTask(models.Model):
    """A next step created for the owner when a deal or lead enters a stage (SAL-7)."""

    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(_("kind"), max_length=12, default="task")
    subject = models.CharField(_("subject"), max_length=200)
    due_in_days = models.PositiveSmallIntegerField(_("due after (days)"), default=1)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["stage", "position", "id"]

    def __str__(self) -> str:
        return self.subject


class Lead(Owned):
    """A prospect not yet a client: who, how to reach them, what they need, where they stand."""

    class Status(models.TextChoices):
        NEW = "new", _("New")
        IN_PROGRESS = "in_progress", _("In progress")
        APPOINTMENT = "appointment", _("Appointment")
        CUSTOMER = "customer", _("Customer")
        DEAD = "dead", _("Dead")

    class Kind(models.TextChoices):
        INDIVIDUAL = "individual", _("Individual")
        COMPANY = "company", _("Company")

    number = models.CharField(_("lead number"), max_length=32, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.COMPANY)
    civility = models.CharField(_("civility"), max_length=20, blank=True)
    name = models.CharField(_("name"), max_length=200)
    company = models.CharField(_("company"), max_length=200, blank=True)
    position_title = models.CharField(_("position"), max_length=100, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True)
    # Lower-cased copy for the duplicate check and web form de-duplication.
    email_key = models.CharField(max_length=254, blank=True, db_index=True, editable=False)
    phone = models.CharField(_("phone"), max_length=32, blank=True, db_index=True)
    tax_id = models.CharField(_("tax id"), max_length=32, blank=True, db_index=True)
    street = models.CharField(_("street"), max_length=200, blank=True)
    postcode = models.CharField(_("postcode"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    region = models.CharField(_("region"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True)
    language = models.CharField(_("language"), max_length=8, default="en")
    source = models.CharField(_("source"), max_length=100, blank=True, db_index=True)
    campaign = models.CharField(_("campaign"), max_length=100, blank=True, db_index=True)
    potential_minor = models.BigIntegerField(_("potential"), default=0)
    currency = models.CharField(_("currency"), max_length=3)
    needs = models.TextField(_("needs"), blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.NEW, db_index=True
    )
    stage = models.ForeignKey(
        Stage, on_delete=models.PROTECT, related_name="leads", verbose_name=_("stage")
    )
    dead_reason = models.CharField(_("why dead"), max_length=200, blank=True)
    next_step = models.CharField(_("next step"), max_length=200, blank=True)
    next_step_on = models.DateField(_("next step on"), null=True, blank=True)
    client = models.ForeignKey(
        "clients.Client",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="leads",
        verbose_name=_("client"),
    )
    converted_at = models.DateTimeField(_("converted"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=clock.now, db_index=True)
    stage_entered_at = models.DateTimeField(_("in this stage since"), default=clock.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["new", "in_progress", "appointment", "customer", "dead"]),
                name="lead_status",
            ),
            # One lead becomes one client: a second conversion finds the first.
            models.UniqueConstraint(
                fields=["client"], condition=Q(client__isnull=False), name="one_lead_per_client"
            ),
        ]
        indexes = [
            models.Index(fields=["stage", "-created_at"], name="lead_stage_created"),
            models.Index(fields=["owner", "status"], name="lead_owner_status"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.company})" if self.company else self.name


class LeadContact(models.Model):
    """Another person at a lead's company."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(_("name"), max_length=200)
    position_title = models.CharField(_("position"), max_length=100, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)

    visibility_via = "lead"

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Deal(Owned):
    """A sale in progress: its value, where it stands, when it should close."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    number = models.CharField(_("deal number"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(
        Stage, on_delete=models.PROTECT, related_name="deals", verbose_name=_("stage")
    )
    status = models.CharField(
        _("status"), max_length=4, choices=Status.choices, default=Status.OPEN
    )
    value_minor = models.BigIntegerField(_("value"), default=0)
    currency = models.CharField(_("currency"), max_length=3)
    # Copied from the stage on each move; the forecast weighs the value by it.
    probability = models.PositiveSmallIntegerField(_("probability, %"), default=0)
    expected_close = models.DateField(_("expected close"), null=True, blank=True)
    campaign = models.CharField(_("campaign"), max_length=100, blank=True)
    client = models.ForeignKey(
        "clients.Client",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deals",
        verbose_name=_("client"),
    )
    lead = models.ForeignKey(
        Lead,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deals",
        verbose_name=_("lead"),
    )
    lost_reason = models.CharField(_("why lost"), max_length=200, blank=True)
    closed_on = models.DateField(_("closed on"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created"), default=clock.now)
    stage_entered_at = models.DateTimeField(_("in this stage since"), default=clock.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["open", "won", "lost"]), name="deal_status"
            ),
            models.CheckConstraint(condition=Q(value_minor__gte=0), name="deal_value_not_negative"),
            models.CheckConstraint(
                condition=Q(probability__lte=100), name="deal_probability_in_range"
            ),
        ]
        indexes = [
            # Kanban columns, each sorted three ways.
            models.Index(fields=["stage", "-created_at", "-id"], name="deal_stage_created"),
            models.Index(fields=["stage", "-value_minor", "-id"], name="deal_stage_value"),
            models.Index(fields=["stage", "expected_close", "id"], name="deal_stage_close"),
            # Won and lost columns: the recently closed first.
            models.Index(fields=["stage", "-closed_on", "-id"], name="deal_stage_closed"),
            models.Index(fields=["status", "expected_close"], name="deal_status_close"),
            models.Index(fields=["owner", "status"], name="deal_owner_status"),
        ]

    def __str__(self) -> str:
        return self.name


class DealSummary(Owned):
    """Running totals of deals per stage, owner, unit, currency and month (SAL-3).

    Kept by the deal services on every create, change and move, so board totals and the
    forecast read a few thousand rows instead of every deal. `month` is the expected-close
    month of open deals and the closing month of won and lost ones.
    """

    key = models.CharField(max_length=120, unique=True, editable=False)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=4)
    currency = models.CharField(max_length=3)
    month = models.DateField(null=True, blank=True)
    count = models.BigIntegerField(default=0)
    value_minor = models.BigIntegerField(default=0)
    # The sum of value_minor × probability: divided by 100 once, when read.
    weighted = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["month", "status"], name="deal_summary_month")]

    def __str__(self) -> str:
        return self.key


class Activity(Owned):
    """A call, meeting, email, quote email, task or to-do, against a client, lead or deal."""

    class Kind(models.TextChoices):
        CALL = "call", _("Call")
        MEETING = "meeting", _("Meeting")
        EMAIL = "email", _("Email")
        QUOTE_EMAIL = "quote_email", _("Quote email")
        SMS = "sms", _("SMS")
        TASK = "task", _("Task")
        TODO = "todo", _("To-do")

    class Outcome(models.TextChoices):
        NONE = "", _("—")
        DONE = "done", _("Done")
        NO_ANSWER = "no_answer", _("No answer")
        CALL_BACK = "call_back", _("Call back")
        INTERESTED = "interested", _("Interested")
        NOT_INTERESTED = "not_interested", _("Not interested")
        CANCELLED = "cancelled", _("Cancelled")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("details"), blank=True)
    # Scheduled time; a logged call or sent email has it at the moment it happened.
    due_at = models.DateTimeField(_("when"), db_index=True)
    duration_minutes = models.PositiveIntegerField(_("duration (minutes)"), default=0)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=16, choices=Outcome.choices, blank=True, default=""
    )
    remind_at = models.DateTimeField(_("remind at"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminded"), null=True, blank=True)
    client = models.ForeignKey(
        "clients.Client",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="activities",
        verbose_name=_("client"),
    )
    lead = models.ForeignKey(
        Lead,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="activities",
        verbose_name=_("lead"),
    )
    deal = models.ForeignKey(
        Deal,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="activities",
        verbose_name=_("deal"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=clock.now)
    # Set for activities made by automation, so a rerun finds them instead of adding more.
    origin_key = models.CharField(max_length=120, blank=True, default="")

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind__in=["call", "meeting", "email", "quote_email", "sms", "task", "todo"]
                ),
                name="activity_kind",
            ),
            models.UniqueConstraint(
                fields=["origin_key"], condition=~Q(origin_key=""), name="activity_origin_once"
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "due_at"], name="activity_owner_due"),
            models.Index(fields=["owner", "kind", "due_at"], name="activity_owner_kind_due"),
            models.Index(fields=["lead", "due_at"], name="activity_lead_due"),
            models.Index(fields=["deal", "due_at"], name="activity_deal_due"),
            models.Index(fields=["client", "due_at"], name="activity_client_due"),
        ]

    def __str__(self) -> str:
        return self.subject


class Quote(Owned):
    """A priced offer to a client or lead, with lines as on an invoice (SAL-4)."""

    class Stage(models.TextChoices):
        DRAFT = "draft", _("Draft")
        NEGOTIATION = "negotiation", _("Negotiation")
        SENT = "sent", _("Sent")
        ON_HOLD = "on_hold", _("On hold")
        ACCEPTED = "accepted", _("Accepted")
        CONVERTED = "converted", _("Converted")
        LOST = "lost", _("Lost")
        CANCELLED = "cancelled", _("Cancelled")

    class Approval(models.TextChoices):
        NOT_REQUESTED = "none", _("Not requested")
        REQUESTED = "requested", _("Approval requested")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    number = models.CharField(_("quote number"), max_length=32, unique=True)
    title = models.CharField(_("title"), max_length=200, blank=True)
    client = models.ForeignKey(
        "clients.Client",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="quotes",
        verbose_name=_("client"),
    )
    lead = models.ForeignKey(
        Lead,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="quotes",
        verbose_name=_("lead"),
    )
    deal = models.ForeignKey(
        Deal,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="quotes",
        verbose_name=_("deal"),
    )
    currency = models.CharField(_("currency"), max_length=3)
    issued_on = models.DateField(_("date"))
    valid_until = models.DateField(_("valid until"))
    stage = models.CharField(_("stage"), max_length=12, choices=Stage.choices, default=Stage.DRAFT)
    approval = models.CharField(
        _("approval"), max_length=10, choices=Approval.choices, default=Approval.NOT_REQUESTED
    )
    approval_note = models.CharField(_("approval note"), max_length=500, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    subtotal_minor = models.BigIntegerField(_("subtotal"), default=0)
    tax_minor = models.BigIntegerField(_("tax"), default=0)
    total_minor = models.BigIntegerField(_("total"), default=0)
    notes = models.TextField(_("notes"), blank=True)
    lost_reason = models.CharField(_("why lost"), max_length=200, blank=True)
    contract = models.OneToOneField(
        "Contract",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="from_quote",
        verbose_name=_("contract"),
    )
    invoice = models.OneToOneField(
        "billing.Invoice",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="from_quote",
        verbose_name=_("invoice"),
    )
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=clock.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-issued_on", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    stage__in=[
                        "draft",
                        "negotiation",
                        "sent",
                        "on_hold",
                        "accepted",
                        "converted",
                        "lost",
                        "cancelled",
                    ]
                ),
                name="quote_stage",
            ),
            models.CheckConstraint(
                condition=Q(approval__in=["none", "requested", "approved", "rejected"]),
                name="quote_approval",
            ),
            models.CheckConstraint(
                condition=Q(client__isnull=False) | Q(lead__isnull=False),
                name="quote_for_client_or_lead",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class QuoteLine(models.Model):
    """A line of a quote, computed as an invoice line is (Decimal, rounded half-up once)."""

    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    description = models.CharField(_("description"), max_length=500)
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=3, default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=18, decimal_places=4)
    discount_percent = models.DecimalField(
        _("discount, %"), max_digits=5, decimal_places=2, default=Decimal(0)
    )
    taxable = models.BooleanField(_("taxable"), default=True)
    tax_rate = models.DecimalField(_("tax, %"), max_digits=6, decimal_places=3, default=Decimal(0))
    net_minor = models.BigIntegerField(_("amount"), default=0)
    tax_minor = models.BigIntegerField(_("tax"), default=0)

    visibility_via = "quote"

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0, discount_percent__lte=100),
                name="quote_line_discount_in_range",
            )
        ]

    def __str__(self) -> str:
        return self.description


class ContractTemplate(models.Model):
    """The text of a contract with merge tags, edited by an administrator (SAL-5)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    body = models.TextField(_("text"))
    is_default = models.BooleanField(_("default template"), default=False)
    updated_at = models.DateTimeField(_("changed"), default=clock.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Contract(Owned):
    """An agreement with a client: its dates, value and status; renewals come due (SAL-5)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        RENEWED = "renewed", _("Renewed")
        EXPIRED = "expired", _("Expired")
        TERMINATED = "terminated", _("Terminated")

    number = models.CharField(_("contract number"), max_length=32, unique=True)
    title = models.CharField(_("title"), max_length=200)
    client = models.ForeignKey(
        "clients.Client",
        on_delete=models.PROTECT,
        related_name="contracts",
        verbose_name=_("client"),
    )
    deal = models.ForeignKey(
        Deal,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="contracts",
        verbose_name=_("deal"),
    )
    template = models.ForeignKey(
        ContractTemplate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="contracts",
        verbose_name=_("template"),
    )
    starts_on = models.DateField(_("starts"))
    ends_on = models.DateField(_("ends"), null=True, blank=True, db_index=True)
    value_minor = models.BigIntegerField(_("value"), default=0)
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    renewal_of = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="renewed_by",
        verbose_name=_("renewal of"),
    )
    # The end date a renewal reminder went out for, so the daily job sends it once.
    reminded_for = models.DateField(null=True, blank=True)
    terms = models.TextField(_("terms"), blank=True)
    created_at = models.DateTimeField(_("created"), default=clock.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-starts_on", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["draft", "active", "renewed", "expired", "terminated"]),
                name="contract_status",
            ),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="contract_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"


class ContractLine(models.Model):
    """A line of a contract, copied from its quote."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    description = models.CharField(_("description"), max_length=500)
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=3, default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=18, decimal_places=4)
    discount_percent = models.DecimalField(
        _("discount, %"), max_digits=5, decimal_places=2, default=Decimal(0)
    )
    taxable = models.BooleanField(_("taxable"), default=True)
    tax_rate = models.DecimalField(_("tax, %"), max_digits=6, decimal_places=3, default=Decimal(0))
    net_minor = models.BigIntegerField(_("amount"), default=0)
    tax_minor = models.BigIntegerField(_("tax"), default=0)

    visibility_via = "contract"

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.description


class DistributionRule(models.Model):
    """Who gets new leads of a campaign or source, and how they take turns (SAL-6)."""

    class Method(models.TextChoices):
        ROUND_ROBIN = "round_robin", _("Round robin")
        LEAST_LOAD = "least_load", _("Fewest open leads")

    name = models.CharField(_("name"), max_length=100, unique=True)
    source = models.CharField(
        _("source"), max_length=100, blank=True, help_text=_("Empty: any source.")
    )
    campaign = models.CharField(
        _("campaign"), max_length=100, blank=True, help_text=_("Empty: any campaign.")
    )
    method = models.CharField(
        _("method"), max_length=12, choices=Method.choices, default=Method.ROUND_ROBIN
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="+", verbose_name=_("people")
    )
    position = models.PositiveSmallIntegerField(_("place in the list"), default=0)
    active = models.BooleanField(_("active"), default=True)
    # The member who got the last lead; round robin continues after them.
    last_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class DistributionLog(models.Model):
    """Who got which lead, by which rule, and whether on arrival or by the schedule."""

    class Trigger(models.TextChoices):
        ARRIVAL = "arrival", _("On arrival")
        SCHEDULE = "schedule", _("By the schedule")

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="distribution")
    rule = models.ForeignKey(
        DistributionRule, on_delete=models.SET_NULL, null=True, related_name="log"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    trigger = models.CharField(_("when"), max_length=8, choices=Trigger.choices)
    at = models.DateTimeField(_("at"), default=clock.now, db_index=True)

    visibility_via = "lead"

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.lead_id} → {self.assignee_id}"


class WebForm(models.Model):
    """A public form on the company's site whose submissions become leads (SAL-9)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    # The secret the site sends with each submission; only its digest is kept.
    key_prefix = models.CharField(max_length=12, editable=False)
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    source = models.CharField(_("source"), max_length=100, default="web form")
    campaign = models.CharField(_("campaign"), max_length=100, blank=True)
    org_unit = models.ForeignKey(
        "accounts.OrgUnit",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("org unit"),
        help_text=_("Leads from this form belong to this unit until distributed."),
    )
    currency = models.CharField(_("currency"), max_length=3)
    per_hour_limit = models.PositiveIntegerField(
        _("submissions per hour from one address"), default=20
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=clock.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebFormSubmission(models.Model):
    """One submission of a web form: kept for throttling and to show what arrived."""

    form = models.ForeignKey(WebForm, on_delete=models.CASCADE, related_name="submissions")
    ip = models.GenericIPAddressField(null=True, blank=True)
    data = models.JSONField(default=dict)
    lead = models.ForeignKey(
        Lead, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    duplicate = models.BooleanField(default=False)
    at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["form", "ip", "at"], name="webform_throttle")]

    def __str__(self) -> str:
        return f"{self.form_id} {self.at:%Y-%m-%d %H:%M}"


class KpiTarget(models.Model):
    """A target for a person or a team over a period, with the commission it earns (SAL-8)."""

    class Metric(models.TextChoices):
        CALLS = "calls", _("Calls")
        MEETINGS = "meetings", _("Meetings")
        EMAILS = "emails", _("Emails")
        QUOTE_EMAILS = "quote_emails", _("Quote emails")
        NEW_LEADS = "new_leads", _("New leads")
        CONTACTED = "contacted", _("Leads contacted")
        CONVERTED = "converted", _("Leads converted")
        REVENUE = "revenue", _("Revenue")
        NEW_BUYERS = "new_buyers", _("New buyers")
        RETURNING_BUYERS = "returning_buyers", _("Returning buyers")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="kpi_targets",
        verbose_name=_("person"),
    )
    org_unit = models.ForeignKey(
        "accounts.OrgUnit",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="kpi_targets",
        verbose_name=_("team"),
    )
    metric = models.CharField(_("measure"), max_length=20, choices=Metric.choices)
    period_start = models.DateField(_("from"))
    period_end = models.DateField(_("to"))
    # A count, or for revenue an amount in minor units of `currency`.
    target = models.BigIntegerField(_("target"))
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    commission_percent = models.DecimalField(
        _("commission, %"), max_digits=5, decimal_places=2, default=Decimal(0)
    )

    class Meta:
        ordering = ["period_start", "metric", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(org_unit__isnull=True))
                | (Q(user__isnull=True) & Q(org_unit__isnull=False)),
                name="kpi_target_person_or_team",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")), name="kpi_period_order"
            ),
            models.CheckConstraint(condition=Q(target__gte=0), name="kpi_target_not_negative"),
            models.UniqueConstraint(
                fields=["user", "org_unit", "metric", "period_start", "period_end"],
                name="one_kpi_target_per_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} {self.period_start}–{self.period_end}"

    @property
    def money(self):
        """A revenue target as an amount (None for a count)."""
        from clientbase.core.money import Money

        return Money(self.target, self.currency) if self.currency else None


class ReorderRule(models.Model):
    """Remind owners of clients who have not ordered for a number of days (SAL-7)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    days = models.PositiveIntegerField(_("without an order for (days)"), default=90)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["days", "id"]

    def __str__(self) -> str:
        return self.name
