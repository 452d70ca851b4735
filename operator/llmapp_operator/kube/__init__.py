"""Kubernetes calls outside Kopf's own watch: Secrets, Jobs, the CRD install."""
