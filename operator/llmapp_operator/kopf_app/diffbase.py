"""Kopf's diff base as a digest: the annotation stays 70 bytes whatever the spec's size.

Kopf keeps the last handled "essence" of each object (its spec, labels and annotations) to tell a
real change from a no-op. Its stock storage writes the whole essence as JSON into an annotation,
so a large spec (100 env values of 4 KiB fit an earlier CRD) pushed the object past the API
server's 256 KiB annotation limit, every patch was refused with 422, and nothing — status, Events,
the finalizer — could be written any more.

The handlers never read Kopf's per-field diff (every pass renders the whole workspace), they only
need "changed or not". So this storage keeps a SHA-256 of the essence: on fetch, an equal digest
returns the current essence (no diff, no change handler), a different one returns an essence that
differs from any real one (a diff on `spec`, so the update handler runs).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

import kopf

# A stand-in "old" essence for a changed object: no real spec has this key (the schema prunes it).
CHANGED = {"spec": {"llmops.dev/changed": True}}


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    def __init__(self, *, prefix: str, key: str = "last-handled-digest") -> None:
        super().__init__(prefix=prefix, key=key)

    @staticmethod
    def digest(essence: Any) -> str:
        text = json.dumps(essence, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        stored = None
        for full_key in self.make_keys(self.key, body=body):
            stored = body.metadata.annotations.get(full_key)
            if stored is not None:
                break
        if stored is None:
            return None   # never handled: Kopf's creation (or resume) cause
        current = self.build(body=body)
        if stored.strip() == self.digest(current):
            return current
        return cast(kopf.BodyEssence, CHANGED)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        for full_key in self.make_keys(self.key, body=body):
            patch.metadata.annotations[full_key] = self.digest(essence)
        self._store_marker(prefix=self.prefix, patch=patch, body=body)
