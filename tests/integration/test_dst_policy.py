"""A DST policy per task over HTTP: previews mark what a policy did, `POST /tasks` takes it and
the task's next instants follow it, and a wrong value is a 400 naming the field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from onair.accounts.tokens import Role
from tests.integration.helpers import body
from tests.integration.test_user_api import cookie, someone

GAP = {
    "type": "cron",
    "parameters": {
        "expression": "30 2 * * *",
        "timezone": "America/New_York",
        "start": "2030-03-09T00:00",
    },
}
FOLD = {
    "type": "cron",
    "parameters": {
        "expression": "30 1 * * *",
        "timezone": "America/New_York",
        "start": "2030-11-02T00:00",
    },
}


async def preview(client: httpx.AsyncClient, condition: Any, policy: Any = None) -> list[Any]:
    answer = await client.post(
        "/tasks/preview", json={"condition": condition, "count": 3, "policy": policy}
    )
    assert answer.status_code == 200, answer.text
    return [(i["utc"], i["local"], i["note"]) for i in answer.json()["instants"]]


async def test_gap_policies(client: httpx.AsyncClient) -> None:
    shifted = await preview(client, GAP)
    assert shifted[1] == (
        "2030-03-10T07:00:00",
        "2030-03-10T03:00:00-04:00",
        "02:30 does not exist on 2030-03-10 in America/New_York; moved to 03:00",
    )
    skipped = await preview(client, GAP, {"dst_gap": "skip"})
    assert [utc for utc, _, _ in skipped] == [
        "2030-03-09T07:30:00",
        "2030-03-11T06:30:00",  # no run on the 10th
        "2030-03-12T06:30:00",
    ]


@pytest.mark.parametrize(
    ("fold", "instants"),
    [
        pytest.param(
            "first",
            ["2030-11-02T05:30:00", "2030-11-03T05:30:00", "2030-11-04T06:30:00"],
            id="first",
        ),
        pytest.param(
            "second",
            ["2030-11-02T05:30:00", "2030-11-03T06:30:00", "2030-11-04T06:30:00"],
            id="second",
        ),
        pytest.param(
            "both", ["2030-11-02T05:30:00", "2030-11-03T05:30:00", "2030-11-03T06:30:00"], id="both"
        ),
    ],
)
async def test_fold_policies_and_the_task_follows(
    client: httpx.AsyncClient, fold: str, instants: list[str]
) -> None:
    found = await preview(client, FOLD, {"dst_fold": fold})
    assert [utc for utc, _, _ in found] == instants
    if fold != "first":
        assert f"(dst_fold: {fold})" in (found[1][2] or "")
    created = await client.post(
        "/tasks", json={**body(condition=FOLD), "policy": {"dst_fold": fold}}
    )
    assert created.status_code == 201, created.text
    task = created.json()["task"]["id"]
    page = (await client.get(f"/ui/api/tasks/{task}")).json()
    assert [i["utc"][:19] for i in page["next"][:3]] == instants
    assert (await client.delete(f"/tasks/{task}")).status_code == 200


async def test_a_wrong_policy_names_its_field(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/tasks", json={**body(condition=GAP), "policy": {"dst_gap": "later"}}
    )
    assert created.status_code == 400
    assert created.json()["extra"][0]["key"] == "policy.dst_gap"
    previewed = await client.post(
        "/tasks/preview", json={"condition": GAP, "policy": {"dst_fold": "third"}}
    )
    assert previewed.status_code == 400
    assert previewed.json()["extra"][0]["key"] == "policy.dst_fold"


async def test_the_user_api_takes_the_policies(client: httpx.AsyncClient) -> None:
    user = someone()
    created = await client.post(
        "/api/v1/scheduler/tasks",
        headers=cookie(user, Role.ADMIN),
        json={
            "name": "night recharge",
            "task_type": "credit_recharge",
            "scheduled_at": "2030-11-02T01:30:00",
            "timezone": "America/New_York",
            "recurrence_type": "daily",
            "parameters": {"user_id": None},
            "policy": {"dst_fold": "both", "resume": "latest"},
        },
    )
    assert created.status_code == 201, created.text
    task = created.json()["id"]
    page = (await client.get(f"/ui/api/tasks/{task}", headers=cookie(user, Role.ADMIN))).json()
    assert [i["utc"][:19] for i in page["next"][:3]] == [
        "2030-11-02T05:30:00",
        "2030-11-03T05:30:00",
        "2030-11-03T06:30:00",  # the fold's second pass
    ]
    previewed = await client.post(
        "/api/v1/scheduler/preview",
        headers=cookie(user),
        json={
            "scheduled_at": "2030-11-02T01:30:00",
            "timezone": "America/New_York",
            "recurrence_type": "daily",
            "policy": {"dst_fold": "second"},
            "count": 2,
        },
    )
    assert previewed.status_code == 200, previewed.text
    assert [i["utc"] for i in previewed.json()["instants"]] == [
        "2030-11-02T05:30:00+00:00",
        "2030-11-03T06:30:00+00:00",
    ]
    wrong = await client.post(
        "/api/v1/scheduler/tasks",
        headers=cookie(user, Role.ADMIN),
        json={
            "name": "x",
            "task_type": "credit_recharge",
            "scheduled_at": "2030-11-02T01:30:00",
            "recurrence_type": "daily",
            "policy": {"resume": "all"},
        },
    )
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", "policy", "resume"]
    path = f"/api/v1/scheduler/tasks/{task}"
    assert (await client.delete(path, headers=cookie(user, Role.ADMIN))).status_code == 200
