"""The REST API at /api/v1/: each module mounts its router here."""

from django.http import HttpRequest
from ninja import NinjaAPI, Schema

from clientbase.clients.api import router as clients_router
from clientbase.core.api_base import AUTH, PROBLEMS, install_problem_handlers

api = NinjaAPI(
    title="Clientbase API",
    version="1",
    description=(
        "CRM and billing. Authenticate with a personal token: `Authorization: Bearer <token>` "
        "(create one in your profile or with `clientbase token create --user NAME`). Errors "
        "are RFC 9457 problem documents. POST accepts an `Idempotency-Key` header."
    ),
    auth=AUTH,
    urls_namespace="api",
)
install_problem_handlers(api)


class Me(Schema):
    """The signed-in user."""

    id: int
    username: str
    name: str
    email: str
    language: str
    role: str | None
    scope: str
    org_unit: str | None
    permissions: list[str]


@api.get("/me", response={200: Me, **PROBLEMS}, tags=["me"], summary="Who am I")
def me(request: HttpRequest):
    """The user the token or session belongs to, with role, reach and allowed actions."""
    from clientbase.core.visibility import user_scope

    user = request.user
    return {
        "id": user.pk,
        "username": user.username,
        "name": user.display_name,
        "email": user.email,
        "language": user.language,
        "role": user.role.slug if user.role else None,
        "scope": str(user_scope(user)),
        "org_unit": user.org_unit.name if user.org_unit else None,
        "permissions": sorted(user.get_all_permissions()),
    }


api.add_router("/clients", clients_router, tags=["clients"])
