"""Pages of the sales module: kpi area."""

urlpatterns: list = []
