"""Ports: the narrow interfaces the core talks to, one module per port (``chain``, ``artifacts``, ``board``).
Adapters implement them; the core never imports an adapter. Checked by import-linter (``make lint``): nothing here
imports an adapter library (web3, httpx, SQLAlchemy, LangChain, ...).
"""
