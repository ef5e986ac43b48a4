"""The repository ports (``orchestrator.ports.repos``) and the SQL repositories behind them, on both backends:
each repository is an instance of its port, and tasks come back as the domain ``Task`` with the spec parsed."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import Engine

from orchestrator.adapters.sql import Store
from orchestrator.adapters.sql.repo import repositories
from orchestrator.domain.lifecycle import TaskState
from orchestrator.domain.specs import TaskSpec
from orchestrator.domain.task import Task
from orchestrator.ports import repos
from orchestrator.ports.repos import Repositories
from tests.test_store import board_task

PORTS = {
    "tasks": repos.Tasks,
    "runs": repos.Runs,
    "reviews": repos.Reviews,
    "ledger": repos.Ledger,
    "cursors": repos.Cursors,
    "agents": repos.Agents,
}


def test_every_repository_is_an_instance_of_its_port(db_engine: Engine) -> None:
    built = repositories(db_engine)
    assert {f.name for f in dataclasses.fields(Repositories)} == set(PORTS)
    for name, port in PORTS.items():
        assert isinstance(getattr(built, name), port), name
    store = Store(db_engine)  # the entry layer's bundle implements every port as well
    assert all(isinstance(store, port) for port in PORTS.values())


def test_a_port_missing_a_method_is_not_implemented() -> None:
    # the isinstance checks above can fail: a repository without one of the port's methods is not one
    class NoTransitions:
        def get_task(self, *, task_id: int) -> Task: ...

    assert not isinstance(NoTransitions(), repos.Tasks)


@pytest.mark.parametrize("key", [7, 2**255])
def test_tasks_are_domain_tasks_with_their_spec_parsed(db_engine: Engine, key: int) -> None:
    r = repositories(db_engine)
    task, created = r.tasks.upsert_discovered(board_task=board_task(key))
    assert created and isinstance(task, Task) and isinstance(task.spec, TaskSpec)
    assert task.task_key == str(key) and task.spec.title == f"task {key}"
    assert r.tasks.find_task(board="main", task_key=str(key)) == task
    moved = r.tasks.transition(task_id=task.id, to=TaskState.CLAIMING, actor="w1", agent="alice", expect_version=1)
    assert isinstance(moved, Task) and (moved.state, moved.version, moved.agent_name) == (
        TaskState.CLAIMING,
        2,
        "alice",
    )
    assert task.state is TaskState.DISCOVERED  # a frozen value: the change is a new Task
    # the entry layer's Store reads the same row as its read model
    public = Store(db_engine).get_task(task_id=task.id)
    assert (public.task_key, public.version, public.spec) == (
        str(key),
        2,
        task.spec.model_dump(mode="json", by_alias=True),
    )
