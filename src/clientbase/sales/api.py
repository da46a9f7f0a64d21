"""API of the sales module, mounted at /api/v1/: each area brings its own router."""

from ninja import Router

from clientbase.sales import activity_api, deal_api, kpi_api, lead_api, quote_api

router = Router()
router.add_router("", lead_api.router)
router.add_router("", deal_api.router)
router.add_router("", activity_api.router)
router.add_router("", quote_api.router)
router.add_router("", kpi_api.router)
