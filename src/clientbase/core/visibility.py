"""The one gate for reads: every list, detail, search, export and count passes through here.

A role's scope decides what a user sees of records that have an owner and an org unit:
everything, their own unit and the units below it, or only what they own themselves.
"""

from django.db import models
from django.db.models import Q
from django.http import Http404
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    """How far a role sees."""

    ALL = "all", _("Everything")
    UNIT = "unit", _("My unit and below")
    OWN = "own", _("Only mine")


def user_scope(user) -> str:
    """The scope a user reads with; nobody signed in sees nothing."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return ""
    if user.is_superuser:
        return Scope.ALL
    role = getattr(user, "role", None)
    return role.scope if role is not None else Scope.OWN


def _condition(user, scope: str, prefix: str) -> Q:
    if scope == Scope.UNIT and user.org_unit_id is not None:
        return Q(**{f"{prefix}org_unit__path__startswith": user.org_unit.path})
    return Q(**{f"{prefix}owner": user})


def scope_filter(model: type[models.Model], user) -> Q | None:
    """The condition that keeps a model's rows within the user's sight (None: all rows).

    `visibility_via` names the relation whose owner and unit decide ("" for the row's own);
    a tuple tries each in turn: ("client", "") means through the client when there is
    one, else by the row's own owner and unit.
    """
    scope = user_scope(user)
    if scope == Scope.ALL:
        return None
    if not scope:
        return Q(pk__in=[])
    via = getattr(model, "visibility_via", "")
    paths = via if isinstance(via, tuple) else (via,)
    condition = Q(pk__in=[])
    for earlier, path in enumerate(paths):
        prefix = f"{path}__" if path else ""
        branch = _condition(user, scope, prefix)
        for skipped in paths[:earlier]:
            branch &= Q(**{f"{skipped}__isnull": True})
        condition |= branch
    return condition


def visible(queryset: models.QuerySet, user) -> models.QuerySet:
    """The rows of a queryset that the user may see."""
    condition = scope_filter(queryset.model, user)
    return queryset if condition is None else queryset.filter(condition)


def get_visible_or_404(queryset: models.QuerySet, user, **lookup) -> models.Model:
    """One row the user may see; a row out of sight is as absent as a missing one."""
    try:
        return visible(queryset, user).get(**lookup)
    except queryset.model.DoesNotExist as missing:
        raise Http404(_("Not found.")) from missing


def can_see(obj: models.Model, user) -> bool:
    """Whether one loaded record is within the user's sight."""
    return visible(type(obj)._default_manager.filter(pk=obj.pk), user).exists()


def may_assign(user, *, owner, org_unit) -> bool:
    """Whether a user may give a record to this owner and unit: only within their own sight."""
    scope = user_scope(user)
    if scope == Scope.ALL:
        return True
    if scope == Scope.UNIT and user.org_unit_id is not None:
        reach = user.org_unit.path
        owner_inside = owner is None or (
            owner.org_unit_id is not None and owner.org_unit.path.startswith(reach)
        )
        return org_unit is not None and org_unit.path.startswith(reach) and owner_inside
    return owner == user and org_unit is not None and org_unit.pk == user.org_unit_id
