"""What every ``deworker`` command shares: the options of the root command (``--config``, ``--debug``), the config
loaded once from them, and the ``Runtime`` (the object graph ``bootstrap`` builds from it).

The root callback puts a ``CliState`` on the Typer context (``ctx.obj``); commands of the sub-apps find it there
(``current()``) instead of importing the root app, so the CLI modules import in one direction only: ``main``
imports the sub-apps, the sub-apps import this module. A sub-app invoked on its own (tests, embedders) has no
root context and uses the process default, ``state``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orchestrator.domain.errors import ConfigError
from orchestrator.entry.config import Config, load_config

if TYPE_CHECKING:  # imported lazily at run time: `deworker --help` stays fast
    from orchestrator.entry.bootstrap import Runtime


class CliState:
    """The root command's options and the config loaded from them (once per command)."""

    config_path: Path | None = None
    debug: bool = False
    _config: Config | None = None

    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def reset(self, *, config_path: Path | None, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug
        self._config = None


#: The process default: the state of the command running now (the root callback resets it per command).
state = CliState()


def current() -> CliState:
    """The running command's state, from the Typer context (the process default when there is none)."""
    ctx = click.get_current_context(silent=True)
    found = ctx.find_object(CliState) if ctx is not None else None
    return found if found is not None else state


def _default_runtime(config: Config) -> Runtime:
    from orchestrator.entry.bootstrap import Runtime

    return Runtime(config)


#: Builds the ``Runtime`` of each command from the loaded config; tests and embedders swap it with
#: ``use_runtime_factory`` (e.g. to share one in-process chain between two "machines").
runtime_factory: Callable[[Config], Runtime] = _default_runtime


def use_runtime_factory(factory: Callable[[Config], Runtime]) -> Callable[[Config], Runtime]:
    """Build the commands' runtime with ``factory`` from now on; returns the previous factory."""
    global runtime_factory
    previous, runtime_factory = runtime_factory, factory
    return previous


def runtime(*, needs_persistent_chain: bool = False) -> Runtime:
    """The running command's object graph, built from its config by ``runtime_factory``."""
    cfg = current().config()
    rt = runtime_factory(cfg)
    if needs_persistent_chain and cfg.chain.kind == "in-process" and rt.chain_override is None:
        raise ConfigError(
            "the DAO commands need a chain that outlives one command, but chain.kind is 'in-process'",
            key="chain.kind",
            hint="run `deworker devnet up`, then set chain.kind: devnet in config.yaml "
            "(or export DEWORKER_CHAIN__KIND=devnet)",
        )
    return rt
