"""API of the sales module: activity area."""

from ninja import Router

router = Router()
