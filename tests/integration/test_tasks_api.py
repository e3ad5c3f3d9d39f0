"""The Tasks API of seed 000 against a real `onair serve` process, on SQLite and PostgreSQL:
the reference's own tests (contract §3), its observed behaviour, and the bugs onair fixes (§4)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from onair.accounts.tokens import Role
from tests.integration.helpers import LATE, NOW, body, schedule, wait_status
from tests.integration.test_user_api import bearer

UNKNOWN = "85478e12-fd0d-4de3-a26b-cd1ec7f94f2b"
STATUSES = ("pending", "running", "cancelled", "failed", "completed")


def future(seconds: float) -> dict[str, object]:
    at = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=seconds)
    return {"type": "at", "parameters": {"datetime": at.isoformat()}}


# The reference's own integration tests ------------------------------------------------------


async def test_post(client: httpx.AsyncClient) -> None:
    request = body()
    response = await client.post("/tasks", json=request)
    assert response.status_code == 201
    created = response.json()
    assert uuid.UUID(created["task"]["id"])
    assert created["task"]["operation"] == request["operation"]
    assert created["task"]["condition"] == request["condition"]
    assert created["task"]["dependencies"] == {}
    scheduled = datetime.fromisoformat(created["scheduled"])
    assert scheduled.tzinfo is None  # naive UTC, as the reference writes it
    assert abs(scheduled - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=5)


async def test_get(client: httpx.AsyncClient) -> None:
    task_id = await schedule(client)
    response = await client.get("/tasks")
    assert response.status_code == 200
    index = response.json()
    assert set(index) == set(STATUSES)
    assert task_id in {i for ids in index.values() for i in ids}


async def test_get_by_id(client: httpx.AsyncClient) -> None:
    request = body({"a": 1})
    task_id = (await client.post("/tasks", json=request)).json()["task"]["id"]
    response = await client.get(f"/tasks/{task_id}")
    assert response.status_code == 200
    task = response.json()
    assert task["task"]["id"] == task_id
    assert task["task"]["operation"] == request["operation"]
    assert task["task"]["condition"] == request["condition"]
    assert task["status"] in STATUSES


# Observed behaviour of the reference --------------------------------------------------------


async def test_test_now_completes_with_echo_and_ordered_times(client: httpx.AsyncClient) -> None:
    task_id = await schedule(client, parameters={"a": 1, "nested": {"b": [1, 2]}})
    done = await wait_status(client, task_id, "completed")
    assert done["result"] == {"parameters": {"a": 1, "nested": {"b": [1, 2]}}, "dependencies": {}}
    scheduled, started, completed = (
        datetime.fromisoformat(done[k]) for k in ("scheduled", "started", "completed")
    )
    assert scheduled <= started <= completed
    index = (await client.get("/tasks")).json()
    assert task_id in index["completed"]


async def test_unknown_id_is_404_with_the_reference_message(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/tasks/{UNKNOWN}")
    assert response.status_code == 404
    assert response.json() == {
        "status_code": 404,
        "detail": "Not Found",
        "extra": f"Task not found: {UNKNOWN}.",
    }
    response = await client.get(f"/tasks/failed/{UNKNOWN}")
    assert response.status_code == 404
    assert response.json()["extra"] == f"Task not found: {UNKNOWN}."


async def test_malformed_id_and_unknown_status_are_plain_404(client: httpx.AsyncClient) -> None:
    for path in ("/tasks/not-a-uuid", f"/tasks/PENDING/{UNKNOWN}", f"/tasks/nope/{UNKNOWN}"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json() == {"status_code": 404, "detail": "Not Found"}


async def test_id_without_hyphens_and_trailing_slashes(client: httpx.AsyncClient) -> None:
    task_id = await schedule(client, condition=future(3600))
    response = await client.get(f"/tasks/{uuid.UUID(task_id).hex}")
    assert response.status_code == 200
    assert response.json()["task"]["id"] == task_id
    assert (await client.get("/tasks/")).status_code == 200
    assert (await client.get("/ping/")).status_code == 204


async def test_status_route_answers_only_for_the_current_status(client: httpx.AsyncClient) -> None:
    task_id = await schedule(client, condition=future(3600))
    pending = await client.get(f"/tasks/pending/{task_id}")
    assert pending.status_code == 200
    assert set(pending.json()) == {"task", "scheduled"}
    completed = await client.get(f"/tasks/completed/{task_id}")
    assert completed.status_code == 404
    assert completed.json()["extra"] == f"Task not found: {task_id}."


async def test_unknown_types_are_400_with_the_reference_message(client: httpx.AsyncClient) -> None:
    response = await client.post("/tasks", json=body(operation="nope"))
    assert response.status_code == 400
    assert response.json() == {
        "status_code": 400,
        "detail": "Bad Request",
        "extra": "Invalid operation: nope.",
    }
    request = body(condition={"type": "never", "parameters": {}})
    response = await client.post("/tasks", json=request)
    assert response.status_code == 400
    assert response.json()["extra"] == "Invalid condition: never."


async def test_body_validation_names_the_key(client: httpx.AsyncClient) -> None:
    request = body()
    del request["dependencies"]
    response = await client.post("/tasks", json=request)
    assert response.status_code == 400
    assert response.json()["detail"] == "Validation failed for POST /tasks"
    assert response.json()["extra"] == [{"message": "Field required", "key": "dependencies"}]

    request = body()
    request["operation"]["parameters"] = [1]
    response = await client.post("/tasks", json=request)
    assert response.status_code == 400
    assert [e["key"] for e in response.json()["extra"]] == ["operation.parameters"]

    response = await client.post("/tasks", json=body(dependencies={"x": "not-a-uuid"}))
    assert response.status_code == 400
    assert [e["key"] for e in response.json()["extra"]] == ["dependencies.x"]

    response = await client.post("/tasks", json=[])
    assert response.status_code == 400
    assert "key" not in response.json()["extra"][0]


async def test_malformed_json_and_wrong_method(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/tasks", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON is malformed")
    for path in ("/tasks", "/tasks/clean", "/tasks/preview"):
        response = await client.post(path)
        assert response.status_code == 400, path
        assert response.json() == {
            "status_code": 400,
            "detail": f"Validation failed for POST {path}",
            "extra": [{"message": "Field required"}],
        }
    response = await client.get("/tasks/clean")
    assert response.status_code == 405
    assert response.json() == {"status_code": 405, "detail": "Method Not Allowed"}


async def test_a_body_must_be_json_and_numbers_are_strings(client: httpx.AsyncClient) -> None:
    """What `curl -d` sends without a header (a form) is refused, as a web page's would be;
    the same bytes as JSON are a task."""
    task = (
        b'{"operation": {"type": "test", "parameters": {}},'
        b' "condition": {"type": "now", "parameters": {}}, "dependencies": {}}'
    )
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = await client.post("/tasks", content=task, headers=form)
    assert response.status_code == 415, response.text
    assert response.json() == {
        "status_code": 415,
        "detail": (
            "The body must be JSON, sent with Content-Type: application/json "
            "(not application/x-www-form-urlencoded)."
        ),
    }
    json_utf8 = {"content-type": "application/json; charset=utf-8"}
    response = await client.post("/tasks", content=task, headers=json_utf8)
    assert response.status_code == 201, response.text
    response = await client.post("/tasks", json=body(operation=1))  # type: ignore[arg-type]
    assert response.status_code == 400
    assert response.json()["extra"] == "Invalid operation: 1."


async def test_ping(client: httpx.AsyncClient) -> None:
    for method in ("GET", "HEAD"):
        response = await client.request(method, "/ping")
        assert response.status_code == 204
        assert response.headers["cache-control"] == "no-store"
        assert response.content == b""


async def test_at_in_the_future_stays_pending_and_cancels(client: httpx.AsyncClient) -> None:
    task_id = await schedule(client, condition=future(3600))
    assert (await client.get(f"/tasks/{task_id}")).json()["status"] == "pending"
    response = await client.delete(f"/tasks/{task_id}")
    assert response.status_code == 200
    cancelled = response.json()
    assert cancelled["started"] is None
    assert datetime.fromisoformat(cancelled["cancelled"]) >= datetime.fromisoformat(
        cancelled["scheduled"]
    )
    assert task_id in (await client.get("/tasks")).json()["cancelled"]
    assert (await client.get(f"/tasks/cancelled/{task_id}")).status_code == 200


async def test_dependency_result_is_passed_under_its_name(client: httpx.AsyncClient) -> None:
    first = await schedule(client, parameters={"h": 1}, condition=future(1))
    second = await schedule(client, parameters={"i": 1}, dependencies={"x": first})
    assert (await client.get(f"/tasks/{second}")).json()["status"] == "pending"
    done = await wait_status(client, second, "completed")
    assert done["result"] == {
        "parameters": {"i": 1},
        "dependencies": {"x": {"parameters": {"h": 1}, "dependencies": {}}},
    }


async def test_clean_all_keeps_pending_and_what_pending_tasks_need(
    own_client: httpx.AsyncClient,
) -> None:
    done = await schedule(own_client)
    await wait_status(own_client, done, "completed")
    needed = await schedule(own_client)
    await wait_status(own_client, needed, "completed")
    waiting = await schedule(own_client, condition=future(3600), dependencies={"x": needed})
    pending = await schedule(own_client, condition=future(3600))
    response = await own_client.post(
        "/tasks/clean", json={"strategy": {"type": "all", "parameters": {}}}
    )
    assert response.status_code == 200
    assert response.json()["removed"] == [done]
    index = (await own_client.get("/tasks")).json()
    assert {waiting, pending} <= set(index["pending"])
    assert index["completed"] == [needed]


async def test_clean_removes_a_chain_leaf_first(own_client: httpx.AsyncClient) -> None:
    first = await schedule(own_client)
    second = await schedule(own_client, dependencies={"x": first})
    await wait_status(own_client, second, "completed")
    response = await own_client.post(
        "/tasks/clean", json={"strategy": {"type": "all", "parameters": {}}}
    )
    assert sorted(response.json()["removed"]) == sorted([first, second])


async def test_clean_by_age(own_client: httpx.AsyncClient) -> None:
    task_id = await schedule(own_client)
    await wait_status(own_client, task_id, "completed")
    for delta in ("PT1H", 3600):
        strategy = {"type": "timedelta", "parameters": {"delta": delta}}
        response = await own_client.post("/tasks/clean", json={"strategy": strategy})
        assert response.status_code == 200
        assert response.json() == {"removed": []}
    strategy = {"type": "timedelta", "parameters": {"delta": "PT0S"}}
    response = await own_client.post("/tasks/clean", json={"strategy": strategy})
    assert response.json() == {"removed": [task_id]}


# The reference's bugs, fixed (contract §4) ---------------------------------------------------


async def test_cancelling_a_finished_task_is_409(client: httpx.AsyncClient) -> None:
    task_id = await schedule(client)
    await wait_status(client, task_id, "completed")
    response = await client.delete(f"/tasks/{task_id}")
    assert response.status_code == 409
    assert (
        response.json()["extra"] == f"Task {task_id} is already completed and cannot be cancelled."
    )
    assert (await client.delete(f"/tasks/{UNKNOWN}")).status_code == 404


async def test_unknown_dependency_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/tasks", json=body(dependencies={"x": UNKNOWN}))
    assert response.status_code == 422
    assert response.json()["extra"] == [
        {
            "message": f"Dependency x refers to an unknown task: {UNKNOWN}.",
            "key": "dependencies.x",
        }
    ]


async def test_bad_clean_parameters_and_unknown_strategy_are_400(client: httpx.AsyncClient) -> None:
    task_id = await schedule(client)
    await wait_status(client, task_id, "completed")
    strategy = {"type": "timedelta", "parameters": {"delta": "soon"}}
    response = await client.post("/tasks/clean", json={"strategy": strategy})
    assert response.status_code == 400
    assert response.json()["extra"][0]["key"] == "strategy.parameters.delta"
    strategy = {"type": "sometimes", "parameters": {}}
    response = await client.post("/tasks/clean", json={"strategy": strategy})
    assert response.status_code == 400
    assert response.json()["extra"] == "Invalid cleaning strategy: sometimes."


async def test_bad_condition_parameters_are_refused_at_creation(client: httpx.AsyncClient) -> None:
    for parameters, key in (
        ({"datetime": "tomorrow"}, "condition.parameters.datetime"),
        ({}, "condition.parameters.datetime"),
    ):
        condition = {"type": "at", "parameters": parameters}
        response = await client.post("/tasks", json=body(condition=condition))
        assert response.status_code == 400, response.text
        assert response.json()["detail"] == "Validation failed for POST /tasks"
        assert [e["key"] for e in response.json()["extra"]] == [key]
    response = await client.post("/tasks", json=body(parameters={"sleep": "long"}))
    assert response.status_code == 400
    assert [e["key"] for e in response.json()["extra"]] == ["operation.parameters.sleep"]


async def test_aware_at_is_accepted(client: httpx.AsyncClient) -> None:
    at = (datetime.now(UTC) + timedelta(hours=2)).astimezone().isoformat()
    task_id = await schedule(client, condition={"type": "at", "parameters": {"datetime": at}})
    task = (await client.get(f"/tasks/{task_id}")).json()
    assert task["status"] == "pending"
    expected = datetime.fromisoformat(at).astimezone(UTC).replace(tzinfo=None)
    assert datetime.fromisoformat(task["next"]) == expected


async def test_already_finished_dependency_resolves_at_once(client: httpx.AsyncClient) -> None:
    first = await schedule(client, parameters={"h": 1})
    await wait_status(client, first, "completed")
    second = await schedule(client, dependencies={"x": first})
    done = await wait_status(client, second, "completed", within=5)
    assert done["result"]["dependencies"] == {"x": {"parameters": {"h": 1}, "dependencies": {}}}


async def test_failed_dependency_fails_the_chain(client: httpx.AsyncClient) -> None:
    first = await schedule(client, parameters={"fail": "no tape"}, condition=future(0.5))
    second = await schedule(client, dependencies={"x": first})
    third = await schedule(client, dependencies={"y": second})
    failed = await wait_status(client, first, "failed")
    assert failed["error"] == "Operation test failed: no tape."
    second_failed = await wait_status(client, second, "failed")
    assert second_failed["error"] == f"Dependency {first} finished with status failed."
    third_failed = await wait_status(client, third, "failed")
    assert third_failed["error"] == f"Dependency {second} finished with status failed."
    # Already failed when the dependent is added: it fails at once, never stays pending.
    fourth = await schedule(client, dependencies={"x": first})
    assert (await client.get(f"/tasks/{fourth}")).json()["status"] == "failed"


async def test_cancelled_dependency_fails_the_dependent(client: httpx.AsyncClient) -> None:
    first = await schedule(client, condition=future(3600))
    second = await schedule(client, dependencies={"x": first})
    await client.delete(f"/tasks/{first}")
    failed = await wait_status(client, second, "failed")
    assert failed["error"] == f"Dependency {first} finished with status cancelled."


async def test_cancelling_a_running_task_stops_it(client: httpx.AsyncClient) -> None:
    task_id = await schedule(client, parameters={"sleep": 30})
    running = await wait_status(client, task_id, "running")
    assert running["started"]
    response = await client.delete(f"/tasks/{task_id}")
    assert response.status_code == 200
    assert response.json()["started"] is not None
    async with asyncio.timeout(1.5):
        while True:
            runs = (await client.get(f"/tasks/{task_id}/runs")).json()["runs"]
            if runs[0]["finished"] is not None:
                break
            await asyncio.sleep(0.02)
    assert runs[0]["outcome"] == "cancelled"
    assert (await client.get(f"/tasks/{task_id}")).json()["status"] == "cancelled"


async def test_run_history_records_lateness(client: httpx.AsyncClient) -> None:
    task_id = await schedule(client, condition=future(0.5))
    await wait_status(client, task_id, "completed")
    page = (await client.get(f"/tasks/{task_id}/runs")).json()
    assert page["count"] == 1
    run = page["runs"][0]
    assert run["outcome"] == "completed"
    assert run["attempt"] == 1
    details = (await client.get(f"/tasks/{task_id}")).json()
    assert details["due"] == run["due"]
    assert details["lateness"] == run["lateness"]
    assert details["last"] is not None
    # Generous for a loaded 2-core machine; `make bench` measures the real figures.
    assert 0 <= run["lateness"] < LATE


async def test_started_and_last_are_the_instant_the_run_really_started(
    client: httpx.AsyncClient,
) -> None:
    """Runs are claimed a little before they are due: the task's `started` (the reference's
    field) and `last` are the run's real start, not its planned one, so a client that reads
    them sees the run's lateness."""
    task_id = await schedule(client, condition=future(0.5))
    completed = await wait_status(client, task_id, "completed")
    (run,) = (await client.get(f"/tasks/{task_id}/runs")).json()["runs"]
    assert completed["started"] == run["started"]
    assert (await client.get(f"/tasks/{task_id}")).json()["last"] == run["started"]
    assert datetime.fromisoformat(run["started"]) > datetime.fromisoformat(run["due"])
    seed = (
        await client.get(f"/api/v1/scheduler/tasks/{task_id}", headers=bearer("ops", Role.ADMIN))
    ).json()
    assert seed["last_executed_at"] == run["started"] + "+00:00"


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation_ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"TasksList", "TasksSchedule", "TasksIdCancel", "TasksCleanClean", "PingPing"} <= (
        operation_ids
    )
    assert (await client.get("/docs")).status_code == 200


async def test_each_documentation_page_links_the_other_surface(client: httpx.AsyncClient) -> None:
    """A newcomer who opens `/docs` finds the user API's documents from there, and back."""
    tasks_api = (await client.get("/openapi.json")).json()["info"]["description"]
    assert "(/api/v1/docs)" in tasks_api
    assert "(/api/v1/openapi.json)" in tasks_api
    user_api = (await client.get("/api/v1/openapi.json")).json()["info"]["description"]
    assert "(/docs)" in user_api
    assert "(/openapi.json)" in user_api
    assert (await client.get("/api/v1/docs")).status_code == 200


async def test_now_condition_in_seed_curl_shape(client: httpx.AsyncClient) -> None:
    response = await client.post("/tasks", json={**body(), "condition": NOW})
    assert response.status_code == 201


async def test_a_running_tasks_started_is_its_real_start_too(client: httpx.AsyncClient) -> None:
    """While a run goes on (past `STARTS_WRITTEN_AFTER`), its task's `started` and `last`, and
    the run's own `started`, are the instant it really started, not the planned one."""
    task_id = await schedule(client, parameters={"sleep": 30}, condition=future(0.3))
    await wait_status(client, task_id, "running")
    async with asyncio.timeout(10):
        while True:
            (run,) = (await client.get(f"/tasks/{task_id}/runs")).json()["runs"]
            if run["started"] != run["due"]:
                break
            await asyncio.sleep(0.1)
    assert datetime.fromisoformat(run["started"]) > datetime.fromisoformat(run["due"])
    running = (await client.get(f"/tasks/running/{task_id}")).json()
    assert running["started"] == run["started"]
    assert (await client.get(f"/tasks/{task_id}")).json()["last"] == run["started"]
    assert (await client.delete(f"/tasks/{task_id}")).status_code == 200


async def test_the_openapi_declares_what_the_routes_really_answer(
    client: httpx.AsyncClient,
) -> None:
    """No FastAPI 422 where the Tasks API answers 400, and each error the routes give is
    declared, in the reference's error shape."""
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]

    def codes(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert codes("/tasks", "post") == {"201", "400", "401", "403", "409", "413", "415", "422"}
    assert codes("/tasks/{id}", "get") == {"200", "401", "403", "404"}
    assert codes("/tasks/{id}", "delete") == {"200", "401", "403", "404", "409"}
    assert codes("/tasks/{id}/runs", "get") == {"200", "400", "401", "403", "404"}
    assert codes("/tasks/clean", "post") == {"200", "400", "401", "403", "413", "415"}
    assert codes("/tasks/completed/{id}", "get") == {"200", "401", "403", "404"}
    assert codes("/ping", "get") == {"204"}
    error = paths["/tasks"]["post"]["responses"]["400"]["content"]["application/json"]
    assert error["schema"] == {"$ref": "#/components/schemas/ReferenceError"}
    assert set(spec["components"]["schemas"]["ReferenceError"]["properties"]) == {
        "status_code",
        "detail",
        "extra",
    }
    assert "HTTPValidationError" not in spec["components"]["schemas"]

    # And the routes do answer those codes.
    answers = {
        ("/tasks", "post"): await client.post("/tasks", json={}),
        ("/tasks", "post", "415"): await client.post("/tasks", content=b"{}"),
        ("/tasks/{id}", "get"): await client.get(f"/tasks/{uuid.uuid4()}"),
        ("/tasks/{id}/runs", "get"): await client.get(f"/tasks/{uuid.uuid4()}/runs?limit=0"),
    }
    for (path, method, *_), response in answers.items():
        assert str(response.status_code) in codes(path, method), (path, response.text)
        assert set(response.json()) <= {"status_code", "detail", "extra"}
    task_id = await schedule(client)
    await wait_status(client, task_id, "completed")
    again = await client.delete(f"/tasks/{task_id}")
    assert again.status_code == 409
    assert "409" in codes("/tasks/{id}", "delete")


async def test_the_documentation_pages_load_nothing_from_other_hosts(
    client: httpx.AsyncClient,
) -> None:
    for prefix in ("", "/api/v1"):
        for page in ("/docs", "/redoc"):
            html = (await client.get(prefix + page)).text
            sources = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert sources, html
            assert all(s.startswith(f"{prefix}/docs-static/") for s in sources), sources
            for source in sources:
                asset = await client.get(source)
                assert asset.status_code == 200, source
                assert len(asset.content) > 1000 or source.endswith(".png"), source
