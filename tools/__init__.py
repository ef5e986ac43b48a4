"""Framework-neutral agent tools (actions) and one thin LangChain adapter (``tools.langchain``).

No tool can move funds, sign or read keys. This ``__init__`` imports nothing.
"""
