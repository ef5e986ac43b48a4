"""``python -m orchestrator`` is the ``deworker`` command."""

from orchestrator.entry.cli.main import main

main()
