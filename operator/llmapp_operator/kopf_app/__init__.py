"""The only place that imports kopf: handlers, Kopf settings and the wiring of dependencies."""
