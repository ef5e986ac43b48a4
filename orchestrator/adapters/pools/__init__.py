"""Project pools (``contracts/ProjectPool.vy``) as the operator sees them: ``ProjectPoolRevenue``."""

from orchestrator.adapters.pools.project_pool import ProjectPoolRevenue

__all__ = ["ProjectPoolRevenue"]
