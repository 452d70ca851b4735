"""llmapp-operator: deploy LLM apps to AWS ECS Fargate from one LLMApp resource."""

GROUP = "llmops.dev"
VERSION = "v1alpha1"
PLURAL = "llmapps"
KIND = "LLMApp"
FINALIZER = "llmops.dev/teardown"

__all__ = ["GROUP", "VERSION", "PLURAL", "KIND", "FINALIZER"]
