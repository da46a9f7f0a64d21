"""API of the sales module: deal area."""

from ninja import Router

router = Router()
