"""The GitHub glue: the app repository's environment variables and secrets (PyGithub)."""
