"""What every API router shares: authentication, problem documents, pagination."""

import datetime as dt

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import LimitOffsetPagination
from ninja.security import HttpBearer, SessionAuth

from clientbase.core import clock


class FieldError(Schema):
    """One thing wrong with the request, at the field that caused it."""

    field: str
    message: str


class Problem(Schema):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[FieldError] = []


PROBLEMS = {400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem}


class TokenAuth(HttpBearer):
    """`Authorization: Bearer cb_…`: a personal token that is not revoked, of an active user."""

    def authenticate(self, request, token):
        from clientbase.accounts.models import ApiToken
        from clientbase.accounts.services import token_digest

        found = (
            ApiToken.objects.select_related("user", "user__role", "user__org_unit")
            .filter(digest=token_digest(token), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if found is None:
            return None
        now = clock.now()
        # Write "last used" at most once a minute, so reads stay reads.
        if found.last_used_at is None or now - found.last_used_at > dt.timedelta(minutes=1):
            ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
        request.user = found.user
        return found.user


class VerifiedSessionAuth(SessionAuth):
    """The web session, for the UI's own calls; CSRF applies to writes."""


AUTH = [TokenAuth(), VerifiedSessionAuth()]


class Page(LimitOffsetPagination):
    """`?limit=&offset=` with the total count, at most 500 a page."""


def problem_body(status: int, title: str, detail: str = "", errors=None) -> dict:
    """The JSON of a problem document."""
    return {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": errors or [],
    }


def install_problem_handlers(api) -> None:
    """Answer every error of the API as a problem document."""

    def respond(request, status, title, detail="", errors=None):
        response = api.create_response(
            request, problem_body(status, title, detail, errors), status=status
        )
        response["Content-Type"] = "application/problem+json"
        return response

    @api.exception_handler(NinjaValidationError)
    def invalid(request, exc):
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "payload")),
                "message": e.get("msg", ""),
            }
            for e in exc.errors
        ]
        return respond(request, 422, "Invalid request", "Some fields are not right.", errors)

    @api.exception_handler(DjangoValidationError)
    def refused(request, exc):
        if hasattr(exc, "error_dict"):
            errors = [
                {"field": "" if field == "__all__" else field, "message": message}
                for field, messages in exc.message_dict.items()
                for message in messages
            ]
        else:
            errors = [{"field": "", "message": m} for m in exc.messages]
        return respond(request, 422, "Refused", "; ".join(e["message"] for e in errors), errors)

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        return respond(
            request, 401, "Not signed in", "Send a valid API token: Authorization: Bearer <token>."
        )

    @api.exception_handler(Http404)
    def missing(request, exc):
        return respond(request, 404, "Not found", "No such record, or not one you may see.")

    @api.exception_handler(PermissionDenied)
    def forbidden(request, exc):
        return respond(request, 403, "Forbidden", "Your role does not allow this action.")

    @api.exception_handler(HttpError)
    def http_error(request, exc):
        return respond(request, exc.status_code, str(exc.message), str(exc.message))
