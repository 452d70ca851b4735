"""The per-object reconcile and teardown: what to run, in which order, and what status says. No kopf here."""
