"""The app's routers: ``pages`` (server-rendered HTML, session cookies, CSRF-checked forms) and ``api`` (JSON,
bearer tokens). Both call the same ``Store`` methods, so a decision means the same thing wherever it is made."""
