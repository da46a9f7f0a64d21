"""Pages of the sales module: activity area."""

urlpatterns: list = []
