"""API of the sales module: kpi area."""

from ninja import Router

router = Router()
