"""The one place where actions become LangChain tools, and where a ``ToolError`` becomes text for the model.

Errors that are not ``ToolError`` (bugs, ``BudgetExceeded``) propagate: the model never sees a traceback.
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import StructuredTool

from agents.errors import ToolError
from tools.base import Action, ActionRegistry


def tool_error_text(exc: ToolError) -> str:
    """How a refused or failed tool call reads to the model."""
    return f"ERROR: {exc.message}" + (f" (hint: {exc.hint})" if exc.hint else "")


def run_action(action: Action[Any], args: dict[str, Any]) -> str:
    """Run ``action``; a ``ToolError`` comes back as text."""
    try:
        return action.invoke(args)
    except ToolError as exc:
        return tool_error_text(exc)


def to_langchain_tool(action: Action[Any]) -> StructuredTool:
    def call(**kwargs: Any) -> str:
        return run_action(action, kwargs)

    return StructuredTool.from_function(
        func=call, name=action.name, description=action.description, args_schema=action.args_schema
    )


def to_langchain_tools(registry: ActionRegistry) -> list[StructuredTool]:
    """LangChain tools for every action in ``registry``, in order."""
    return [to_langchain_tool(action) for action in registry]
