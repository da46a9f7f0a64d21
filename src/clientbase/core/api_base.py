"""What every API router shares: authentication, problem documents, pagination, input types."""

import datetime as dt
import functools
from http import HTTPStatus
from typing import Annotated

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.urls import re_path
from django.utils import timezone
from django.utils.log import log_response
from django.views.decorators.csrf import csrf_exempt
from ninja import Field, NinjaAPI, Schema
from ninja.conf import settings as ninja_settings
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import LimitOffsetPagination
from ninja.security import HttpBearer, SessionAuth
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from clientbase.core import clock
from clientbase.core.errors import ConflictError

PROBLEM_MEDIA_TYPE = "application/problem+json"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Ids are 64-bit in both databases; a bigger number is a 422, not a database overflow.
MAX_ID = 2**63 - 1
MAX_OFFSET = 1_000_000_000


def _storable_text(value: str) -> str:
    # PostgreSQL refuses NUL in text and no database takes lone surrogates: refuse them at
    # the field instead of failing in the database.
    if "\x00" in value:
        raise PydanticCustomError("text", "Text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as bad:
        raise PydanticCustomError("text", "Text must be valid Unicode") from bad
    return value


def _utc_moment(value: dt.datetime) -> dt.datetime:
    # A time without an offset is read in the company's zone. Every time is kept in UTC, so an
    # offset the database cannot hold (PostgreSQL stops at ±16 h) never reaches it.
    if value.utcoffset() is None:
        value = timezone.make_aware(value.replace(tzinfo=None))
    try:
        return value.astimezone(dt.UTC)
    except OverflowError as beyond:
        raise PydanticCustomError("datetime", "The time is out of range") from beyond


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A record id as the API accepts it."""

Text = Annotated[str, AfterValidator(_storable_text)]
"""A string the API accepts: any Unicode text a database can store."""

Moment = Annotated[dt.datetime, AfterValidator(_utc_moment)]
"""A date and time the API accepts, with or without an offset, returned in UTC."""


class FieldError(Schema):
    """One thing wrong with the request, at the field that caused it."""

    field: str
    message: str


class Problem(Schema):
    """An RFC 9457 problem document; `errors` names the fields at fault ("" for none)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError]


PROBLEMS = {
    400: Problem,
    401: Problem,
    403: Problem,
    404: Problem,
    409: Problem,
    422: Problem,
    500: Problem,
}
"""Every problem response, for an operation that may answer any of them."""


def problems(*statuses: int) -> dict[int, type[Problem]]:
    """The problem responses an operation declares: the given ones, 401 and 500.

    Name 400 for an operation with a JSON body (ninja answers 400 to one it cannot parse)
    and 422 for one with any parameter or body (ninja's validation).
    """
    return {status: Problem for status in sorted({401, 500, *statuses})}


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

    def _get_key(self, request):
        # Without a signed-in session there is nothing to protect: answer 401 (not signed
        # in), not the 403 of a CSRF check on a request that carries no session at all.
        if not request.user.is_authenticated:
            return None
        return super()._get_key(request)


AUTH = [TokenAuth(), VerifiedSessionAuth()]


class Page(LimitOffsetPagination):
    """`?limit=&offset=` with the total count, at most 500 a page."""

    class Input(Schema):
        limit: int = Field(
            ninja_settings.PAGINATION_PER_PAGE,
            ge=1,
            le=ninja_settings.PAGINATION_MAX_LIMIT,
            description="How many items to return.",
        )
        offset: int = Field(0, ge=0, le=MAX_OFFSET, description="How many items to skip.")


def problem_body(status: int, title: str, detail: str = "", errors=None) -> dict:
    """The JSON of a problem document."""
    return {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": errors or [],
    }


# Where ninja says a parameter came from; the client knows its fields by name only.
_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}


def _field_name(location) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in _SOURCES:
        source = parts.pop(0)
        # Ninja puts the body's function parameter (e.g. `payload`) next, which the client
        # never sees: the field is what follows it.
        if source == "body" and parts:
            parts.pop(0)
    return ".".join(parts)


def problem_response(status: int, title: str, detail: str = "", errors=None) -> JsonResponse:
    """A problem document as a response, for answers given outside an operation."""
    return JsonResponse(
        problem_body(status, title, detail, errors), status=status, content_type=PROBLEM_MEDIA_TYPE
    )


def _answers_with_problems(view):
    """Ninja's own answers outside operations (unknown URL, wrong method) as problems."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return _unknown_url(request)
        if response.status_code == 405 and response.get("Content-Type") != PROBLEM_MEDIA_TYPE:
            allowed = ", ".join(sorted(m for m in response.get("Allow", "").split(", ") if m))
            response = problem_response(
                405, "Method not allowed", f"This address answers {allowed or 'nothing'}."
            )
            response["Allow"] = allowed
        return response

    return wrapped


@csrf_exempt  # like every API address: a write to a wrong one is a 404, not a CSRF 403
def _unknown_url(request, *args, **kwargs):
    return problem_response(404, "Not found", "No such address in this API; see its docs.")


class ClientbaseAPI(NinjaAPI):
    """A NinjaAPI whose every answer is documented and every error a problem document.

    Problem responses are declared as `application/problem+json`, every POST declares the
    optional `Idempotency-Key` header that core.idempotency honours, and an unknown address
    or method under the API is a problem document too, not the site's HTML page.
    """

    @property
    def urls(self):
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            pattern.callback = _answers_with_problems(pattern.callback)
        patterns.append(re_path(r"", _unknown_url, name="unknown"))
        return patterns, app_name, namespace

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for path_item in schema["paths"].values():
            for method, operation in path_item.items():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    declared = content.get("application/json", {}).get("schema", {})
                    if declared.get("$ref", "").endswith("/Problem"):
                        content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
                if method == "post":
                    operation.setdefault("parameters", []).append(
                        {
                            "in": "header",
                            "name": IDEMPOTENCY_HEADER,
                            "required": False,
                            "description": (
                                "Any unique string: a retry with the same key and body gets "
                                "the first response again instead of acting twice."
                            ),
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        }
                    )
        return schema


def install_problem_handlers(api) -> None:
    """Answer every error of the API as a problem document."""

    def respond(request, status, title, detail="", errors=None):
        response = api.create_response(
            request, problem_body(status, title, detail, errors), status=status
        )
        response["Content-Type"] = PROBLEM_MEDIA_TYPE
        return response

    @api.exception_handler(NinjaValidationError)
    def invalid(request, exc):
        errors = [
            {"field": _field_name(e.get("loc", ())), "message": e.get("msg", "")}
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

    @api.exception_handler(ConflictError)
    def conflict(request, exc):
        return respond(request, 409, "Conflict", " ".join(exc.messages))

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        response = respond(
            request, 401, "Not signed in", "Send a valid API token: Authorization: Bearer <token>."
        )
        response["WWW-Authenticate"] = 'Bearer realm="api"'  # a 401 must name its scheme
        return response

    @api.exception_handler(Http404)
    def missing(request, exc):
        return respond(request, 404, "Not found", "No such record, or not one you may see.")

    @api.exception_handler(PermissionDenied)
    def forbidden(request, exc):
        return respond(request, 403, "Forbidden", "Your role does not allow this action.")

    @api.exception_handler(HttpError)
    def http_error(request, exc):
        try:
            title = HTTPStatus(exc.status_code).phrase
        except ValueError:
            title = "Error"
        return respond(request, exc.status_code, title, str(exc.message))

    @api.exception_handler(Exception)
    def crashed(request, exc):
        response = respond(
            request, 500, "Server error", "Something went wrong on our side; try again later."
        )
        # Ninja would re-raise and Django answer with an HTML page; log it as Django does
        # (with the traceback, so error reports still go out), once.
        log_response(
            "Internal Server Error: %s",
            request.path,
            response=response,
            request=request,
            exception=exc,
        )
        return response
