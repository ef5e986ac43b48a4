"""``python -m orchestrator`` is the ``deworker`` command."""

from orchestrator.cli import main

main()
