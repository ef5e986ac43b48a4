"""Human review: a web inbox, a JSON API and a CLI for approving agent work before it is submitted to a DAO,
and a dashboard of the fleet.

Public API (import from the modules; this package imports nothing, so the CLI stays fast)::

    from orchestrator.entry.web.app import create_app          # the FastAPI app over an engine and its services
    from orchestrator.entry.web.config import Role, WebConfig, WebSettings
    from orchestrator.entry.web.users import UserStore         # reviewer accounts, API tokens, sessions
    from orchestrator.entry.cli.review import review_app          # `deworker review ...`

Modules: ``app`` (factory, error handlers), ``routes.pages`` / ``routes.api``, ``auth`` (sessions, CSRF, tokens,
rate limit, security headers), ``users`` (argon2 accounts), ``render`` (safe artifact rendering and diffs),
``chart`` (server-side SVG), ``views`` (what pages and API show, from ``Store`` and the aggregate
``orchestrator.adapters.sql.queries``), ``tokens`` (amounts with each token's symbol and decimals), ``models`` (tables),
``config``.
"""
