"""Operating the service: Prometheus metrics, run-outcome webhooks and the hardened HTTP session every outbound
request uses. Readiness (/readyz) is jobs.health."""
