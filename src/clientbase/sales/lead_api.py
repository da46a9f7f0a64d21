"""API of the sales module: lead area."""

from ninja import Router

router = Router()
