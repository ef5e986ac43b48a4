"""Agents: LLM-backed workers that turn a task spec into an artifact (``AgentRunner`` port, ``LangChainAgent``).

This package's ``__init__`` imports nothing, so ``tools`` can use ``agents.errors`` without loading LangChain.
"""
