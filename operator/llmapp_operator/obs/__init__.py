"""Observability: logging with redaction, Prometheus metrics."""
