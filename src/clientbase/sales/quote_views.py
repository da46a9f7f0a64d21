"""Pages of the sales module: quote area."""

urlpatterns: list = []
