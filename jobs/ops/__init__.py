"""Operating the service: health and readiness, Prometheus metrics, run-outcome webhooks and the hardened HTTP
session every outbound request uses."""
