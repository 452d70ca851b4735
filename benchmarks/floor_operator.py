"""The floor for the scale benchmark: the least a Kopf operator with teardown does.

Run as `kopf run --standalone -n NS benchmarks/floor_operator.py`. One create handler that
patches `status.phase`, one delete handler (so Kopf adds a finalizer, as ours does), and the same
persistence and posting choices as llmapp-operator (annotations under llmops.dev, no Kopf Events),
so the ratio compares like with like.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = "llmops.dev/teardown"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="llmops.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="llmops.dev", key="last-handled-configuration")
    settings.posting.level = logging.CRITICAL
    settings.scanning.disabled = True
    settings.queueing.idle_timeout = 0.5


@kopf.on.create("llmops.dev", "v1alpha1", "llmapps")
def create(patch: kopf.Patch, **_: Any) -> None:
    patch.status["phase"] = "Ready"


@kopf.on.delete("llmops.dev", "v1alpha1", "llmapps")
def delete(**_: Any) -> None:
    return None
