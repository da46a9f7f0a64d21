"""The REST API at /api/v1/: each module mounts its router here."""

from django.http import HttpRequest
from ninja import Schema, Swagger

from clientbase.billing.api import router as billing_router
from clientbase.catalog.api import router as catalog_router
from clientbase.clients.api import router as clients_router
from clientbase.clients.io_api import router as imports_router
from clientbase.core.api_base import AUTH, ClientbaseAPI, install_problem_handlers, problems
from clientbase.marketing.api import router as marketing_router
from clientbase.portal.api import router as portal_router
from clientbase.reports.api import router as reports_router
from clientbase.sales.api import router as sales_router
from clientbase.support.api import router as support_router

api = ClientbaseAPI(
    title="Clientbase API",
    version="1",
    description=(
        "CRM and billing. Authenticate with a personal token: `Authorization: Bearer <token>` "
        "(create one in your profile or with `clientbase token create --user NAME`). Errors "
        "are RFC 9457 problem documents. POST accepts an `Idempotency-Key` header."
    ),
    auth=AUTH,
    urls_namespace="api",
    # Served from /static/ (ninja is an installed app), so the docs work offline and under
    # the site's CSP; no validator badge, which would fetch an image from swagger.io.
    docs=Swagger(settings={"validatorUrl": None}),
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


@api.get("/me", response={200: Me, **problems()}, tags=["me"], summary="Who am I")
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
api.add_router("/imports", imports_router, tags=["imports"])
# The catalogue and billing name their resources at the top (/products, /invoices,
# /clients/{id}/balance), as integrators of billing APIs expect.
api.add_router("", catalog_router, tags=["catalog"])
api.add_router("", billing_router, tags=["billing"])
# Support names its resources at the top too: /tickets, /departments, /kb/articles.
api.add_router("", support_router, tags=["support"])
api.add_router("", sales_router, tags=["sales"])
api.add_router("", marketing_router, tags=["marketing"])
api.add_router("/reports", reports_router, tags=["reports"])
api.add_router("/portal", portal_router, tags=["portal"])
