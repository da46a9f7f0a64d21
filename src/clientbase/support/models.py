"""Data of the support desk: departments, tickets and their messages, mail received, the
knowledge base, ticket ratings and surveys."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clientbase.core import clock
from clientbase.core.models import Owned


class Priority(models.TextChoices):
    """How urgent a ticket is; each has its own response deadline per department."""

    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class Department(models.Model):
    """A support queue with its own address, response deadlines and mailbox."""

    class Escalation(models.TextChoices):
        NONE = "none", _("Only flag it")
        REASSIGN = "reassign", _("Reassign to the escalation contact")
        NOTIFY = "notify", _("Email the escalation contact")

    name = models.CharField(_("name"), max_length=100, unique=True)
    email = models.EmailField(
        _("support address"),
        unique=True,
        help_text=_("Mail to this address becomes a ticket of this department."),
    )
    org_unit = models.ForeignKey(
        "accounts.OrgUnit",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("org unit"),
        help_text=_("Tickets from guests are seen by this unit."),
    )
    is_default = models.BooleanField(
        _("default department"),
        default=False,
        help_text=_("Mail to an address no department has lands here."),
    )
    position = models.PositiveSmallIntegerField(_("place in the list"), default=0)
    # Response deadlines in minutes, per priority: the seed's rule is two hours.
    sla_low = models.PositiveIntegerField(_("respond to low within (minutes)"), default=120)
    sla_medium = models.PositiveIntegerField(_("respond to medium within (minutes)"), default=120)
    sla_high = models.PositiveIntegerField(_("respond to high within (minutes)"), default=120)
    sla_urgent = models.PositiveIntegerField(_("respond to urgent within (minutes)"), default=120)
    escalation = models.CharField(
        _("when a ticket is overdue"),
        max_length=10,
        choices=Escalation.choices,
        default=Escalation.NONE,
    )
    escalate_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("escalation contact"),
    )
    # A mailbox polled for mail (SUP-2); the password is never shown back.
    imap_enabled = models.BooleanField(_("poll a mailbox"), default=False)
    imap_host = models.CharField(_("IMAP server"), max_length=200, blank=True)
    imap_port = models.PositiveIntegerField(_("IMAP port"), default=993)
    imap_ssl = models.BooleanField(_("use TLS"), default=True)
    imap_user = models.CharField(_("IMAP user"), max_length=200, blank=True)
    imap_password = models.CharField(_("IMAP password"), max_length=200, blank=True)
    imap_folder = models.CharField(_("IMAP folder"), max_length=200, default="INBOX")
    active = models.BooleanField(_("active"), default=True)

    audit_secret_fields = ("imap_password",)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["position", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(escalation__in=["none", "reassign", "notify"]),
                name="department_escalation_valid",
            ),
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="department_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def response_minutes(self, priority: str) -> int:
        """The response deadline for a priority, in minutes."""
        return getattr(self, f"sla_{priority}", self.sla_medium)


class Ticket(Owned):
    """A support request of a client or a guest: one thread of messages (SUP-1)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ANSWERED = "answered", _("Answered")
        CUSTOMER_REPLY = "customer_reply", _("Customer reply")
        ON_HOLD = "on_hold", _("On hold")
        IN_PROGRESS = "in_progress", _("In progress")
        CLOSED = "closed", _("Closed")

    class Source(models.TextChoices):
        STAFF = "staff", _("Opened by staff")
        EMAIL = "email", _("Email")
        API = "api", _("API")

    # The customer spoke last: these wait for us (the "awaiting reply" counter).
    AWAITING = ("open", "customer_reply")
    UNRESOLVED = ("open", "answered", "customer_reply", "on_hold", "in_progress")

    # A client's tickets are seen by whoever sees the client; a guest's by the assignee's
    # scope and the department's unit.
    visibility_via = ("client", "")

    number = models.CharField(_("ticket number"), max_length=32, unique=True)
    client = models.ForeignKey(
        "clients.Client",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("client"),
    )
    contact = models.ForeignKey(
        "clients.Contact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("contact"),
    )
    # Who writes to us: the client's address, a contact's, or a guest's.
    email = models.EmailField(_("email"), max_length=254)
    name = models.CharField(_("name"), max_length=200, blank=True)
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("department")
    )
    subject = models.CharField(_("subject"), max_length=300)
    # The subject lower-cased by Python, which folds every alphabet (SQLite's LOWER() and
    # LIKE fold only ASCII): what a fragment search compares with.
    subject_search = models.CharField(max_length=300, blank=True, db_default="")
    priority = models.CharField(
        _("priority"), max_length=8, choices=Priority.choices, default=Priority.MEDIUM
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.OPEN
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("assignee"),
    )
    cc = models.JSONField(_("CC recipients"), default=list, blank=True)
    is_complaint = models.BooleanField(_("complaint"), default=False)
    source = models.CharField(_("opened by"), max_length=8, choices=Source.choices)
    created_at = models.DateTimeField(_("opened"), default=clock.now)
    last_activity_at = models.DateTimeField(_("last activity"), default=clock.now)
    # The response deadline while the customer waits for us; empty otherwise.
    due_at = models.DateTimeField(_("respond by"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("closed by"),
    )
    # Almost every ticket has none: a full index on it would lead SQLite's planner to scan
    # it for "merged_into IS NULL" in every list; the partial index below serves lookups.
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,
        related_name="merged_tickets",
        verbose_name=_("merged into"),
    )
    # A random key for the customer's links (reading the thread as a guest, rating it):
    # the number alone opens nothing.
    access_key = models.CharField(max_length=40, unique=True)
    version = models.PositiveIntegerField(default=1)

    audit_skip_fields = ("version", "last_activity_at", "access_key", "subject_search")

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "-id"], name="ticket_status_idx"),
            models.Index(fields=["department", "status", "-id"], name="ticket_dept_idx"),
            models.Index(fields=["owner", "status", "-id"], name="ticket_owner_idx"),
            models.Index(fields=["priority", "-id"], name="ticket_priority_idx"),
            models.Index(fields=["client", "-id"], name="ticket_client_idx"),
            models.Index(fields=["email"], name="ticket_email_idx"),
            models.Index(
                fields=["due_at"], condition=Q(due_at__isnull=False), name="ticket_due_idx"
            ),
            models.Index(
                fields=["client"], condition=Q(is_complaint=True), name="ticket_complaint_idx"
            ),
            models.Index(
                fields=["merged_into"],
                condition=Q(merged_into__isnull=False),
                name="ticket_merged_idx",
            ),
            # The narrow filters of the list and the counters, each over the few tickets of its
            # kind, newest first: a page walks them in order and stops, a capped count reads a
            # thousand entries, with the columns visibility needs (client, owner) at hand, and
            # for "awaiting" those an agent narrows it by (department, priority), so that
            # PostgreSQL skips the others in the index. The conditions repeat the queries' own
            # (Ticket.AWAITING, UNRESOLVED, in that order) word for word, or a database would
            # not know they apply.
            models.Index(
                fields=["-id", "client", "owner", "department", "priority"],
                condition=Q(status__in=["open", "customer_reply"], merged_into__isnull=True),
                name="ticket_awaiting_idx",
            ),
            # The same within a department: SQLite's planner would walk a whole priority
            # rather than the awaiting index without a leading equality to estimate by.
            models.Index(
                fields=["department", "-id", "client", "owner"],
                condition=Q(status__in=["open", "customer_reply"], merged_into__isnull=True),
                name="ticket_awaiting_dept_idx",
            ),
            models.Index(
                fields=["-id", "due_at", "client", "owner"],
                condition=Q(due_at__isnull=False, merged_into__isnull=True),
                name="ticket_overdue_idx",
            ),
            models.Index(
                fields=["-id"],
                condition=Q(
                    is_complaint=True,
                    status__in=["open", "answered", "customer_reply", "on_hold", "in_progress"],
                    merged_into__isnull=True,
                ),
                name="ticket_complaint_open_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "open",
                        "answered",
                        "customer_reply",
                        "on_hold",
                        "in_progress",
                        "closed",
                    ]
                ),
                name="ticket_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(priority__in=["low", "medium", "high", "urgent"]),
                name="ticket_priority_valid",
            ),
            models.CheckConstraint(
                condition=Q(source__in=["staff", "email", "api"]), name="ticket_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.subject}"

    @property
    def subject_tag(self) -> str:
        """The tag in every mail's subject that threads a reply back to this ticket."""
        return f"[#{self.number}]"

    @property
    def is_overdue(self) -> bool:
        """Whether the customer has waited past the response deadline."""
        return self.due_at is not None and self.due_at < clock.now()


class TicketMessage(models.Model):
    """One message of a ticket: the customer's, a staff reply, or an internal note."""

    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        REPLY = "reply", _("Reply")
        NOTE = "note", _("Internal note")

    visibility_via = ("ticket__client", "ticket")

    ticket = models.ForeignKey(
        Ticket, on_delete=models.PROTECT, related_name="messages", verbose_name=_("ticket")
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    from_email = models.CharField(_("from"), max_length=254, blank=True)
    from_name = models.CharField(_("sender name"), max_length=200, blank=True)
    to = models.JSONField(_("to"), default=list, blank=True)
    cc = models.JSONField(_("CC"), default=list, blank=True)
    body = models.TextField(_("message"), blank=True)
    # Sanitised HTML of an incoming mail (nh3): safe to show, kept beside the text.
    body_html = models.TextField(blank=True)
    created_at = models.DateTimeField(_("time"), default=clock.now, db_index=True)
    # Threading: our own Message-ID for what we send, the sender's for what we receive.
    message_id = models.CharField(max_length=998, blank=True, db_index=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    auto_generated = models.BooleanField(_("automatic mail"), default=False)
    sent_at = models.DateTimeField(_("emailed"), null=True, blank=True)
    # Taken by the one sender sending it now (see mail.send_ticket_message).
    send_claimed_at = models.DateTimeField(null=True, blank=True)
    send_error = models.TextField(blank=True)
    # What went wrong reading an incoming mail (bad charset, dropped attachment…).
    problems = models.JSONField(default=list, blank=True)
    inbound = models.ForeignKey(
        "InboundMail", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("ticket message")
        verbose_name_plural = _("ticket messages")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["customer", "reply", "note"]), name="ticketmessage_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M}"


def _attachment_path(attachment: "Attachment", filename: str) -> str:
    return f"tickets/{attachment.sha256[:2]}/{attachment.sha256}"


class Attachment(models.Model):
    """A file that came with a ticket message; stored by digest under an inert name."""

    visibility_via = ("message__ticket__client", "message__ticket")

    message = models.ForeignKey(
        TicketMessage,
        on_delete=models.PROTECT,
        related_name="attachments",
        verbose_name=_("message"),
    )
    name = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("type"), max_length=100)
    size = models.PositiveBigIntegerField(_("size"))
    sha256 = models.CharField(max_length=64, blank=True)
    file = models.FileField(upload_to=_attachment_path, max_length=200, blank=True)
    # An attachment over the size limit is listed but not kept; the reason says why.
    dropped_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class InboundMail(models.Model):
    """A raw message as received, kept whatever became of it, so nothing is lost (SUP-2)."""

    class Outcome(models.TextChoices):
        TICKET = "ticket", _("New ticket")
        REPLY = "reply", _("Added to a ticket")
        IGNORED = "ignored", _("Ignored")

    # Message-ID, or a digest of the stable headers for a message without one.
    key = models.CharField(max_length=998, unique=True)
    received_at = models.DateTimeField(_("received"), default=clock.now, db_index=True)
    via = models.CharField(_("received by"), max_length=8)
    sender = models.CharField(_("from"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    raw = models.BinaryField()
    size = models.PositiveBigIntegerField(default=0)
    outcome = models.CharField(_("outcome"), max_length=8, choices=Outcome.choices)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    ticket = models.ForeignKey(
        Ticket, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("received mail")
        verbose_name_plural = _("received mail")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=["ticket", "reply", "ignored"]),
                name="inboundmail_outcome_valid",
            )
        ]

    def __str__(self) -> str:
        return self.key


class ReplyTemplate(models.Model):
    """A canned reply with merge tags such as $client_name and $ticket_number (SUP-3)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    body = models.TextField(_("text"))
    department = models.ForeignKey(
        Department,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("only for department"),
    )

    class Meta:
        verbose_name = _("reply template")
        verbose_name_plural = _("reply templates")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class KbCategory(models.Model):
    """A chapter of the knowledge base."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    position = models.PositiveSmallIntegerField(_("place in the list"), default=0)

    class Meta:
        verbose_name = _("knowledge base category")
        verbose_name_plural = _("knowledge base categories")
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class KbArticle(models.Model):
    """A knowledge base article, often written from a resolved ticket (SUP-6)."""

    category = models.ForeignKey(
        KbCategory, on_delete=models.PROTECT, related_name="articles", verbose_name=_("category")
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"))
    keywords = models.CharField(_("keywords"), max_length=300, blank=True)
    published = models.BooleanField(_("published"), default=True)
    source_ticket = models.ForeignKey(
        Ticket,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="articles",
        verbose_name=_("written from ticket"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("by")
    )
    created_at = models.DateTimeField(_("written"), default=clock.now)
    updated_at = models.DateTimeField(_("changed"), default=clock.now)
    # Lower-cased title, keywords and text: one column to search by fragment.
    search_text = models.TextField(blank=True)

    audit_skip_fields = ("search_text",)

    class Meta:
        verbose_name = _("article")
        verbose_name_plural = _("articles")
        ordering = ["category__position", "title"]

    def __str__(self) -> str:
        return self.title


class TicketRating(models.Model):
    """The customer's score of a closed ticket, given once from the closing mail (SUP-7)."""

    visibility_via = ("ticket__client", "ticket")

    ticket = models.OneToOneField(
        Ticket, on_delete=models.PROTECT, related_name="rating", verbose_name=_("ticket")
    )
    score = models.PositiveSmallIntegerField(_("score"))
    comment = models.TextField(_("comment"), blank=True)
    # Who and which department the score is for: as they were when the ticket closed.
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("agent"),
    )
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="+", verbose_name=_("department")
    )
    rated_at = models.DateTimeField(_("rated"), default=clock.now)

    class Meta:
        verbose_name = _("ticket rating")
        verbose_name_plural = _("ticket ratings")
        ordering = ["-rated_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=1, score__lte=5), name="ticketrating_score_range"
            )
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.score}"


class Survey(models.Model):
    """A questionnaire sent to a segment of clients (SUP-7)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENT = "sent", _("Sent")
        CLOSED = "closed", _("Closed")

    title = models.CharField(_("title"), max_length=200)
    intro = models.TextField(_("introduction"), blank=True)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.DRAFT
    )
    # The segment: clients matching every filter that is set.
    segment = models.JSONField(_("sent to"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("by")
    )
    created_at = models.DateTimeField(_("created"), default=clock.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["draft", "sent", "closed"]), name="survey_status_valid"
            )
        ]

    def __str__(self) -> str:
        return self.title


class SurveyQuestion(models.Model):
    """One question: a choice among options, a score on a scale, or free text."""

    class Kind(models.TextChoices):
        CHOICE = "choice", _("Choice")
        SCALE = "scale", _("Scale 1–5")
        TEXT = "text", _("Free text")

    survey = models.ForeignKey(
        Survey, on_delete=models.CASCADE, related_name="questions", verbose_name=_("survey")
    )
    position = models.PositiveSmallIntegerField(_("place in the list"), default=0)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    text = models.CharField(_("question"), max_length=300)
    choices = models.JSONField(_("options"), default=list, blank=True)
    required = models.BooleanField(_("required"), default=True)

    class Meta:
        verbose_name = _("survey question")
        verbose_name_plural = _("survey questions")
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["choice", "scale", "text"]), name="surveyquestion_kind"
            )
        ]

    def __str__(self) -> str:
        return self.text


class SurveyInvitation(models.Model):
    """A survey sent to one client, answered at most once through its secret link."""

    visibility_via = "client"

    survey = models.ForeignKey(
        Survey, on_delete=models.PROTECT, related_name="invitations", verbose_name=_("survey")
    )
    client = models.ForeignKey(
        "clients.Client", on_delete=models.PROTECT, related_name="+", verbose_name=_("client")
    )
    token = models.CharField(max_length=40, unique=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)

    class Meta:
        verbose_name = _("survey invitation")
        verbose_name_plural = _("survey invitations")
        constraints = [
            models.UniqueConstraint(fields=["survey", "client"], name="survey_client_once")
        ]

    def __str__(self) -> str:
        return f"{self.survey_id}/{self.client_id}"


class SurveyAnswer(models.Model):
    """The answer to one question of one invitation."""

    invitation = models.ForeignKey(
        SurveyInvitation, on_delete=models.PROTECT, related_name="answers"
    )
    question = models.ForeignKey(SurveyQuestion, on_delete=models.PROTECT, related_name="answers")
    choice = models.CharField(max_length=200, blank=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    text = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["invitation", "question"], name="surveyanswer_once_per_question"
            )
        ]

    def __str__(self) -> str:
        return f"{self.question_id}"
