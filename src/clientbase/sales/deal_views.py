"""Pages of the sales module: deal area."""

urlpatterns: list = []
