"""API of the sales module, mounted at /api/v1/ (its own issue adds the operations)."""

from ninja import Router

router = Router()
