from django.contrib import admin
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.views import TokenView

from jobs.views import healthz, prometheus_metrics, readyz, run_log
from pointscene.graphql.view import ApiGraphQLView

# GraphiQL is served only when settings.GRAPHQL_GRAPHIQL is on; the view reads it per request.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("oauth2/token", csrf_exempt(TokenView.as_view()), name="oauth2-token"),
    path("oauth2/token/", csrf_exempt(TokenView.as_view())),
    path("graphql", csrf_exempt(ApiGraphQLView.as_view()), name="graphql"),
    path("graphql/", csrf_exempt(ApiGraphQLView.as_view())),
    path("logs/<str:token>", run_log, name="job-run-log"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", prometheus_metrics, name="metrics"),
]
