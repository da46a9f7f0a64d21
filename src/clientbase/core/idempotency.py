"""Safe retries of API writes: a POST with an Idempotency-Key runs once.

Same key and same request: the stored response again. Same key, other request: 422.
Same key while the first is still running: 409. A 5xx or a crash forgets the key, so the
client may retry, and so do 401, 403 and 429, where the request was turned away before it
ran and may well succeed once the caller is let in. Keys are per caller and kept for 24
hours (see core.jobs).
"""

import datetime as dt
import hashlib

from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse

from clientbase.core import clock
from clientbase.core.api_base import IDEMPOTENCY_HEADER, PROBLEM_MEDIA_TYPE, problem_body
from clientbase.core.models import IdempotencyKey

HEADER = IDEMPOTENCY_HEADER
ABANDONED_AFTER = dt.timedelta(minutes=5)
MAX_KEY_LENGTH = 255
# Turned away before running: not signed in, not allowed, throttled.
NOT_RUN = {401, 403, 429}


def problem(status: int, title: str, detail: str) -> JsonResponse:
    """An RFC 9457 problem document about the Idempotency-Key header."""
    return JsonResponse(
        problem_body(status, title, detail, [{"field": HEADER, "message": detail}]),
        status=status,
        content_type=PROBLEM_MEDIA_TYPE,
    )


def _principal(request) -> str | None:
    """Who is calling: keys of one caller never collide with another's."""
    authorization = request.headers.get("Authorization", "")
    if authorization:
        return hashlib.sha256(authorization.encode()).hexdigest()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return hashlib.sha256(f"session-user:{user.pk}".encode()).hexdigest()
    return None


def _request_hash(request) -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.get_full_path().encode(), request.body):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def _replay(record: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(
        bytes(record.response_body or b""),
        status=record.response_status,
        content_type=record.response_content_type or "application/json",
    )
    response["Idempotent-Replayed"] = "true"
    return response


class IdempotencyMiddleware:
    """Applies the Idempotency-Key rules to POST requests under /api/."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None or not request.path.startswith("/api/"):
            return self.get_response(request)
        if not key or len(key) > MAX_KEY_LENGTH:
            return problem(400, "Bad Idempotency-Key", "Use a key of 1 to 255 characters.")
        principal = _principal(request)
        if principal is None:
            return self.get_response(request)
        request_hash = _request_hash(request)
        record, earlier = self._claim(principal, key, request, request_hash)
        if earlier is not None:
            return earlier
        try:
            response = self.get_response(request)
        except BaseException:
            IdempotencyKey.objects.filter(pk=record.pk).delete()
            raise
        if response.status_code >= 500 or response.status_code in NOT_RUN or response.streaming:
            IdempotencyKey.objects.filter(pk=record.pk).delete()
            return response
        IdempotencyKey.objects.filter(pk=record.pk).update(
            state=IdempotencyKey.State.DONE,
            response_status=response.status_code,
            response_content_type=response.get("Content-Type", ""),
            response_body=response.content,
        )
        return response

    def _claim(self, principal, key, request, request_hash, attempts=3):
        """Take the key for this request, or answer from the request that took it first."""
        try:
            with transaction.atomic():
                record = IdempotencyKey.objects.create(
                    principal=principal,
                    key=key,
                    method=request.method,
                    path=request.path[:500],
                    request_hash=request_hash,
                )
            return record, None
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(principal=principal, key=key).first()
        if existing is not None and existing.request_hash != request_hash:
            return None, problem(
                422,
                "Idempotency-Key reused",
                "This key was already used for a different request; use a new key.",
            )
        if existing is not None and existing.state == IdempotencyKey.State.DONE:
            return None, _replay(existing)
        abandoned = existing is None or existing.created_at < clock.now() - ABANDONED_AFTER
        if abandoned and attempts > 1:
            # The first request let the key go (it failed), or died without doing so.
            if existing is not None:
                IdempotencyKey.objects.filter(pk=existing.pk, state=existing.state).delete()
            return self._claim(principal, key, request, request_hash, attempts - 1)
        return None, problem(
            409,
            "Request in progress",
            "The first request with this key is still running; retry in a moment.",
        )
