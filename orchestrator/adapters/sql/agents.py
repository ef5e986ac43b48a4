"""``SqlAgents``: the fleet's agents as registered from config (``orchestrator.ports.repos.Agents``)."""

from __future__ import annotations

from sqlmodel import col, select

from orchestrator.adapters.sql.base import SqlRepository, T
from orchestrator.adapters.sql.models import Agent, AgentCreate, AgentPublic
from orchestrator.ports.repos import AgentProfile


class SqlAgents(SqlRepository[T]):
    """The ``agent`` table, keyed by name."""

    def upsert_agent(self, *, agent: AgentProfile) -> AgentPublic:
        """Create the agent, or update its address, skills and enabled flag (the name is the key)."""
        agent = agent if isinstance(agent, AgentCreate) else AgentCreate.model_validate(agent, from_attributes=True)
        with self._transaction(f"saving agent {agent.name!r}") as s:
            row = s.exec(select(Agent).where(col(Agent.name) == agent.name).with_for_update()).one_or_none()
            if row is None:
                row = Agent.model_validate(agent)
                s.add(row)
            else:
                row.sqlmodel_update(agent.model_dump(exclude={"name"}))
            s.flush()
            return AgentPublic.model_validate(row)

    def agents(self, *, enabled_only: bool = False) -> list[AgentPublic]:
        """Registered agents by name."""
        query = select(Agent).order_by(col(Agent.name))
        if enabled_only:
            query = query.where(col(Agent.enabled).is_(True))
        with self._transaction("listing agents", reads_only=True) as s:
            return [AgentPublic.model_validate(a) for a in s.exec(query)]
