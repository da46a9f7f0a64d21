"""Staff users, their roles and the organisation tree they work in."""

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils.translation import gettext_lazy as _

from clientbase.core import clock
from clientbase.core.visibility import Scope


class OrgUnit(models.Model):
    """A node of the organisation: the company, a region, a branch or a team."""

    class Kind(models.TextChoices):
        COMPANY = "company", _("Company")
        REGION = "region", _("Region")
        BRANCH = "branch", _("Branch")
        TEAM = "team", _("Team")

    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("part of"),
    )
    # Materialised path of ids ("1/4/9/"): "my unit and below" is one indexed prefix match.
    path = models.CharField(max_length=255, db_index=True, editable=False)

    class Meta:
        verbose_name = _("org unit")
        verbose_name_plural = _("org units")
        ordering = ["path"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["company", "region", "branch", "team"]),
                name="orgunit_kind_valid",
            ),
            models.UniqueConstraint(fields=["parent", "name"], name="orgunit_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def depth(self) -> int:
        """0 for the company, 1 for a region, and so on."""
        return max(self.path.count("/") - 1, 0)


class Role(models.Model):
    """A set of allowed actions and how far its holders see."""

    name = models.CharField(_("name"), max_length=80, unique=True)
    slug = models.SlugField(_("code"), max_length=40, unique=True)
    scope = models.CharField(_("sees"), max_length=8, choices=Scope.choices, default=Scope.OWN)
    permissions = models.JSONField(_("allowed actions"), default=list, blank=True)
    require_two_factor = models.BooleanField(_("requires two-step login"), default=False)

    class Meta:
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope__in=["all", "unit", "own"]), name="role_scope_valid"
            )
        ]

    def __str__(self) -> str:
        from django.utils.translation import gettext

        from clientbase.accounts.roles import DEFAULT_ROLE_NAMES

        # A default role keeps its translated name until an administrator renames it.
        if DEFAULT_ROLE_NAMES.get(self.slug) == self.name:
            return gettext(self.name)
        return self.name


class User(AbstractUser):
    """A member of staff who signs in to Clientbase."""

    org_unit = models.ForeignKey(
        OrgUnit,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="members",
        verbose_name=_("org unit"),
    )
    role = models.ForeignKey(
        Role,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
        verbose_name=_("role"),
    )
    language = models.CharField(_("language"), max_length=8, default="en")
    phone = models.CharField(_("phone"), max_length=32, blank=True)

    objects = UserManager()
    audit_secret_fields = ("password",)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["username"]

    @property
    def display_name(self) -> str:
        """Full name, or the login name when none is set."""
        return self.get_full_name() or self.username


class ApiToken(models.Model):
    """A personal API token; only its SHA-256 digest is kept."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("user")
    )
    name = models.CharField(_("name"), max_length=80)
    prefix = models.CharField(_("starts with"), max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), default=clock.now)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    audit_secret_fields = ("digest",)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        """A token works until it is revoked."""
        return self.revoked_at is None
