"""API of the sales module: quote area."""

from ninja import Router

router = Router()
