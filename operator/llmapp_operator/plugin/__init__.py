"""`kubectl llmapp`: a kubectl plugin for LLMApps (cli.py: commands, view.py: what they print)."""
