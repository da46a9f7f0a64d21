"""Pages of the sales module: lead area."""

urlpatterns: list = []
