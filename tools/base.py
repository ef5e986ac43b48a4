"""Framework-neutral actions: a name, an LLM-facing description, a pydantic argument schema and a plain function.

An action's function takes its validated arguments and returns text for the model; it raises ``ToolError`` (or
``ToolRefused``) when it cannot do what was asked. ``tools.langchain`` adapts actions to LangChain tools and is
the only place where such errors become text.

No action may move funds, sign anything or read keys: tool modules never import ``orchestrator.adapters.chain``,
``wallets`` or web3 (a test checks every module in ``tools/``).

Must not import LangChain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from agents.errors import ToolError

ArgsT = TypeVar("ArgsT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Action(Generic[ArgsT]):
    """One thing an agent can do. ``func`` gets validated ``args_schema`` arguments and returns text."""

    name: str
    description: str
    args_schema: type[ArgsT]
    func: Callable[[ArgsT], str]

    def invoke(self, raw_args: dict[str, Any]) -> str:
        """Validate ``raw_args`` and run the action. Bad arguments raise ``ToolError``."""
        try:
            args = self.args_schema.model_validate(raw_args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}" for e in exc.errors()[:5]
            )
            raise ToolError(f"invalid arguments for {self.name}: {problems}") from None
        return self.func(args)


class ActionRegistry:
    """Actions by name, in the order they were added."""

    def __init__(self, actions: Iterable[Action[Any]] = ()) -> None:
        self._actions: dict[str, Action[Any]] = {}
        for action in actions:
            self.add(action)

    def add(self, action: Action[Any]) -> None:
        if action.name in self._actions:
            raise ValueError(f"duplicate action name {action.name!r}")
        self._actions[action.name] = action

    def get(self, name: str) -> Action[Any] | None:
        return self._actions.get(name)

    def names(self) -> list[str]:
        return list(self._actions)

    def __iter__(self) -> Iterator[Action[Any]]:
        return iter(self._actions.values())

    def __len__(self) -> int:
        return len(self._actions)
