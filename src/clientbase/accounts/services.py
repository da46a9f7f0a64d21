"""Every change to users, roles, org units, tokens and sign-in protection."""

import hashlib
import secrets
from dataclasses import dataclass

from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django_otp.plugins.otp_email.models import EmailDevice
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from clientbase.accounts.models import ApiToken, OrgUnit, Role, User
from clientbase.accounts.permissions import ACTIONS
from clientbase.core import clock
from clientbase.core.audit import audit_create, audit_update, snapshot
from clientbase.core.errors import ServiceError
from clientbase.core.events import record_event

TOKEN_PREFIX = "cb_"
RECOVERY_CODE_COUNT = 10

# --- org units --------------------------------------------------------------------------


def org_unit_create(*, name: str, kind: str, parent: OrgUnit | None, by: User | None) -> OrgUnit:
    """Add a unit under a parent (or the top company when there is no parent)."""
    name = name.strip()
    if not name:
        raise ServiceError(_("A unit needs a name."), field="name")
    if kind not in OrgUnit.Kind.values:
        raise ServiceError(_("Unknown kind of unit."), field="kind")
    with transaction.atomic():
        if OrgUnit.objects.filter(parent=parent, name=name).exists():
            raise ServiceError(_("This unit already has a part with that name."), field="name")
        unit = OrgUnit.objects.create(name=name, kind=kind, parent=parent, path="")
        unit.path = f"{parent.path if parent else ''}{unit.pk}/"
        unit.save(update_fields=["path"])
        audit_create(unit, by=by)
    return unit


def org_unit_update(*, unit: OrgUnit, name: str, parent: OrgUnit | None, by: User) -> OrgUnit:
    """Rename a unit or move it, with everything below it, under another parent."""
    name = name.strip()
    if not name:
        raise ServiceError(_("A unit needs a name."), field="name")
    with transaction.atomic():
        unit = OrgUnit.objects.select_for_update().get(pk=unit.pk)
        if parent is not None and parent.path.startswith(unit.path):
            raise ServiceError(_("A unit cannot be moved under itself."), field="parent")
        if OrgUnit.objects.filter(parent=parent, name=name).exclude(pk=unit.pk).exists():
            raise ServiceError(_("This unit already has a part with that name."), field="name")
        before = snapshot(unit)
        old_path = unit.path
        unit.name, unit.parent = name, parent
        unit.path = f"{parent.path if parent else ''}{unit.pk}/"
        unit.save(update_fields=["name", "parent", "path"])
        if unit.path != old_path:
            for below in OrgUnit.objects.filter(path__startswith=old_path).exclude(pk=unit.pk):
                below.path = unit.path + below.path[len(old_path) :]
                below.save(update_fields=["path"])
        audit_update(unit, before, by=by)
    return unit


# --- roles ------------------------------------------------------------------------------


def _clean_permissions(codes: list[str]) -> list[str]:
    unknown = sorted(set(codes) - set(ACTIONS))
    if unknown:
        raise ServiceError(
            _("Unknown actions: %(codes)s") % {"codes": ", ".join(unknown)}, field="permissions"
        )
    return sorted(set(codes))


def role_save(
    *,
    role: Role | None,
    name: str,
    slug: str,
    scope: str,
    permissions: list[str],
    require_two_factor: bool,
    by: User,
) -> Role:
    """Create a role, or change one's name, reach, allowed actions and 2FA rule."""
    permissions = _clean_permissions(permissions)
    with transaction.atomic():
        if role is None:
            role = Role(
                name=name,
                slug=slug,
                scope=scope,
                permissions=permissions,
                require_two_factor=require_two_factor,
            )
            role.full_clean()
            role.save()
            audit_create(role, by=by)
            return role
        role = Role.objects.select_for_update().get(pk=role.pk)
        before = snapshot(role)
        role.name, role.slug, role.scope = name, slug, scope
        role.permissions, role.require_two_factor = permissions, require_two_factor
        role.full_clean()
        role.save()
        audit_update(role, before, by=by)
    return role


# --- users ------------------------------------------------------------------------------

USER_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "language",
    "org_unit",
    "role",
    "is_active",
)


def user_create(
    *,
    username: str,
    password: str | None,
    by: User | None,
    is_superuser: bool = False,
    **fields,
) -> User:
    """Add a member of staff; the password must pass the password rules."""
    user = User(username=username.strip(), is_superuser=is_superuser, is_staff=is_superuser)
    for name, value in fields.items():
        if name not in USER_FIELDS:
            raise TypeError(f"user_create() got an unexpected field {name!r}")
        setattr(user, name, value)
    if password:
        try:
            validate_password(password, user)
        except ValidationError as refused:
            raise ServiceError(errors={"password": refused.messages}) from refused
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    with transaction.atomic():
        user.save()
        audit_create(user, by=by)
        record_event("user.created", by=by, subject=user, details={"username": user.username})
    return user


def user_update(*, user: User, by: User, **fields) -> User:
    """Change a user's name, contact, unit, role, language or whether they may sign in."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        before = snapshot(user)
        for name, value in fields.items():
            if name not in USER_FIELDS:
                raise TypeError(f"user_update() got an unexpected field {name!r}")
            setattr(user, name, value)
        user.full_clean(exclude=["password"])
        user.save()
        if audit_update(user, before, by=by):
            record_event("user.changed", by=by, subject=user, details={"username": user.username})
    return user


def user_set_password(*, user: User, password: str, by: User | None) -> User:
    """Give a user a new password that passes the password rules."""
    try:
        validate_password(password, user)
    except ValidationError as refused:
        raise ServiceError(errors={"password": refused.messages}) from refused
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        before = snapshot(user)
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_update(user, before, by=by)
        record_event(
            "user.password_changed", by=by, subject=user, details={"username": user.username}
        )
    return user


def user_set_language(*, user: User, language: str) -> User:
    """Remember the language a user reads Clientbase in."""
    from django.conf import settings

    if language not in dict(settings.LANGUAGES):
        raise ServiceError(_("That language is not available."), field="language")
    with transaction.atomic():
        before = snapshot(user)
        user.language = language
        user.save(update_fields=["language"])
        audit_update(user, before, by=user)
    return user


# --- API tokens -------------------------------------------------------------------------


def token_digest(raw: str) -> str:
    """The stored form of a token: its SHA-256 (tokens are long and random, so no salt)."""
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    """A new token: the row and the secret, which is shown once and never again."""

    token: ApiToken
    secret: str


def token_create(*, user: User, name: str, by: User | None) -> IssuedToken:
    """Make a personal API token for a user."""
    name = name.strip()
    if not name:
        raise ServiceError(
            _("Give the token a name, so you know later what uses it."), field="name"
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=secret[:10], digest=token_digest(secret)
        )
        audit_create(token, by=by)
        record_event("token.created", by=by, subject=user, details={"name": name})
    return IssuedToken(token=token, secret=secret)


def token_revoke(*, token: ApiToken, by: User) -> ApiToken:
    """Stop a token from working, for good."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is not None:
            return token
        before = snapshot(token)
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        audit_update(token, before, by=by)
        record_event("token.revoked", by=by, subject=token.user, details={"name": token.name})
    return token


# --- two-step login ---------------------------------------------------------------------


def totp_device_start(*, user: User) -> TOTPDevice:
    """An unconfirmed authenticator-app device whose secret the user scans."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def _confirm(device, method: str, user: User) -> list[str]:
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = []
    if not StaticDevice.objects.filter(user=user, confirmed=True).exists():
        codes = recovery_codes_regenerate(user=user)
    record_event(
        "user.two_factor_enabled",
        by=user,
        subject=user,
        details={"username": user.username, "method": method},
    )
    return codes


def totp_device_confirm(*, user: User, device: TOTPDevice, code: str) -> list[str]:
    """Turn on an authenticator app once it shows a right code; returns new recovery codes."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
        if not device.verify_token(code.strip().replace(" ", "")):
            raise ServiceError(
                _(
                    "That code is not right. Check the time on your phone and "
                    "enter the code the app shows now."
                ),
                field="code",
            )
        TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).delete()
        return _confirm(device, "totp", user)


def email_device_start(*, user: User) -> EmailDevice:
    """Send a first code to the user's email, to prove the address before using it."""
    if not user.email:
        raise ServiceError(_("Add an email address to your profile first."), field="email")
    with transaction.atomic():
        device, _created = EmailDevice.objects.get_or_create(
            user=user, defaults={"name": "Email", "confirmed": False}
        )
    device.generate_challenge()
    return device


def email_device_confirm(*, user: User, code: str) -> list[str]:
    """Turn on codes by email once the first one came back right."""
    with transaction.atomic():
        device = EmailDevice.objects.select_for_update().filter(user=user).first()
        if device is None or not device.verify_token(code.strip()):
            raise ServiceError(_("That code is not right or has expired."), field="code")
        return _confirm(device, "email", user)


def recovery_codes_regenerate(*, user: User) -> list[str]:
    """Replace the user's recovery codes with ten new single-use ones."""
    with transaction.atomic():
        device, _created = StaticDevice.objects.get_or_create(
            user=user, defaults={"name": "Recovery codes", "confirmed": True}
        )
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def two_factor_disable(*, user: User, by: User) -> None:
    """Remove every second-step device of a user (e.g. a lost phone)."""
    with transaction.atomic():
        for model in (TOTPDevice, EmailDevice, StaticDevice):
            model.objects.filter(user=user).delete()
        record_event(
            "user.two_factor_disabled", by=by, subject=user, details={"username": user.username}
        )


# --- sign-in throttling -----------------------------------------------------------------


def login_unlock(*, attempt: AccessAttempt, by: User) -> None:
    """Lift a sign-in lock now, for the account or the address it was on."""
    with transaction.atomic():
        username, ip = attempt.username, attempt.ip_address
        if username:
            axes_reset(username=username)
        if ip:
            axes_reset(ip=ip)
        subject = User.objects.filter(username=username).first()
        record_event(
            "user.unlocked",
            by=by,
            subject=subject,
            details={"username": username or ip},
        )
