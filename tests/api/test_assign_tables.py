"""POST /api/ops/dashboard/assign-tables end to end (docs/assign-tables.md §2, §3, docs/assign-tables.md §8, §13 cases 37-48): the real
app as the runtime role capacity_app on a fresh head database, the floor of tests/support/floor.py (T1 cap 2, T2/T3 cap 4
adjacent in zone Z, T4 cap 4 in zone Y, Dinner 17:00-23:00; B1 party 2 18:00-20:00, B2 party 4 18:30-20:30)."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

import httpx
import jwt
import psycopg
import pytest
from fastapi import FastAPI

from service.assign import repository as repo
from service.assign.routes import get_clock
from service.auth import mint_token
from tests.api.assign_support import PATH, ROLES, AssignWorld
from tests.api.conftest import JWT_SECRET


@pytest.fixture
def client(app_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client[1]


def _written(aw: AssignWorld) -> tuple[int, int, int]:
    """(assignment rows, allocation rows, idempotency rows) of the floor's restaurant."""
    return aw.sql(
        """SELECT (SELECT count(*) FROM booking_table_assignments a JOIN bookings b ON b.id = a.booking_id
                    WHERE b.restaurant_id = %(r)s),
                  (SELECT count(*) FROM allocations WHERE restaurant_id = %(r)s),
                  (SELECT count(*) FROM booking_assignment_idempotency i JOIN bookings b ON b.id = i.booking_id
                    WHERE b.restaurant_id = %(r)s)""",
        {"r": aw.rid},
    )[0]


def _problem(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == code
    return body


# ------------------------------------------------------------------------------------------------------
# auth matrix (docs/assign-tables.md §3, cases 37-40)
# ------------------------------------------------------------------------------------------------------
def _claims(aw: AssignWorld, **over) -> dict:
    now = int(time.time())
    return {"sub": str(aw.users["owner"]), "role": "authenticated", "aud": "authenticated",
            "iat": now, "exp": now + 600, **over}


async def test_no_token_is_401_even_with_a_bad_body(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    _problem(await client.post(PATH, json=aw.body()), 401, "UNAUTHENTICATED")
    # case 37 [REC]: authentication first, so an anonymous bad body is 401, not 400
    body = _problem(await client.post(PATH, content=b"not json"), 401, "UNAUTHENTICATED")
    assert body["error"] == "Authentication required"


@pytest.mark.parametrize(
    "token_kind", ["bad_signature", "expired", "alg_none", "wrong_audience", "garbage"]
)
async def test_invalid_tokens_are_401(aw: AssignWorld, client: httpx.AsyncClient, token_kind: str) -> None:
    if token_kind == "bad_signature":
        token = jwt.encode(_claims(aw), "another-secret-0123456789abcdef0123456789", algorithm="HS256")
    elif token_kind == "expired":
        token = jwt.encode(_claims(aw, exp=int(time.time()) - 3600), JWT_SECRET, algorithm="HS256")
    elif token_kind == "alg_none":
        token = jwt.encode(_claims(aw), None, algorithm="none")
    elif token_kind == "wrong_audience":
        token = jwt.encode(_claims(aw, aud="someone-else"), JWT_SECRET, algorithm="HS256")
    else:
        token = "not-a-jwt"
    resp = await client.post(PATH, json=aw.body(), headers={"Authorization": f"Bearer {token}"})
    _problem(resp, 401, "UNAUTHENTICATED")
    assert _written(aw) == (0, 0, 0)


async def test_other_restaurants_member_is_403_and_nothing_is_written(
    aw: AssignWorld, client: httpx.AsyncClient
) -> None:
    body = _problem(await aw.assign(client, "outsider"), 403, "FORBIDDEN")
    assert body["error"] == "Forbidden"
    assert _written(aw) == (0, 0, 0)


async def test_unknown_restaurant_is_403_never_404(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    resp = await client.post(PATH, json={"restaurantId": str(uuid.uuid4())}, headers=aw.auth("owner"))
    _problem(resp, 403, "FORBIDDEN")


async def test_service_credential_has_no_membership(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    token = mint_token(aw.settings, sub=None, role="service_role")
    resp = await client.post(PATH, json=aw.body(), headers={"Authorization": f"Bearer {token}"})
    _problem(resp, 403, "FORBIDDEN")


@pytest.mark.parametrize("role", ROLES)
async def test_every_member_role_may_run_it(aw: AssignWorld, client: httpx.AsyncClient, role: str) -> None:
    resp = await aw.assign(client, role)
    assert resp.status_code == 200, resp.text
    assert {a["bookingId"] for a in resp.json()["assigned"]} == {str(aw.floor.b1), str(aw.floor.b2)}
    # assigned_by is the caller (docs/assign-tables.md §3 item 3)
    by = {r[0] for r in aw.sql(
        "SELECT DISTINCT assigned_by FROM booking_table_assignments WHERE booking_id IN (%s, %s)",
        (aw.floor.b1, aw.floor.b2))}
    assert by == {aw.users[role]}


# ------------------------------------------------------------------------------------------------------
# request handling (docs/assign-tables.md §2.1, cases 37, 41, 42)
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"date": "2031-06-13"}',
        b'{"restaurantId": "not-a-uuid"}',
        b'{"restaurantId": "7e5813fb-de17-4dfc-ae69-92768ade8e21", "date": "13/06/2031"}',
        b'{"restaurantId": "7e5813fb-de17-4dfc-ae69-92768ade8e21", "date": "2025-13-45"}',
        b'{"restaurantId": "7e5813fb-de17-4dfc-ae69-92768ade8e21", "date": "2025-02-30"}',
        b'{"restaurantId": "7e5813fb-de17-4dfc-ae69-92768ade8e21", "captureDecisions": "yes please"}',
    ],
)
async def test_bad_bodies_are_400(aw: AssignWorld, client: httpx.AsyncClient, payload: bytes) -> None:
    headers = {**aw.auth("owner"), "content-type": "application/json"}
    body = _problem(await client.post(PATH, content=payload, headers=headers), 400, "INVALID_BODY")
    assert body["error"] == "Invalid request body"


async def test_unknown_fields_are_refused(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    """Issue 11: an unknown key is a 400 naming it (a typo such as ``dryrun`` must not run a real,
    writing assignment); this test asserted the opposite before."""
    aw.booking(2, "18:00", "19:30", status="pending_allocation")
    resp = await aw.assign(client, somethingElse=42)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "INVALID_BODY"
    assert [d["field"] for d in resp.json()["details"]] == ["somethingElse"]
    assert aw.assignments() == {}


async def test_date_defaults_to_today_in_the_restaurant_timezone(
    aw: AssignWorld, app_client: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    """Case 41: tz America/Los_Angeles, now 2025-03-02T02:30Z → 2025-03-01 (the UTC date is the 2nd)."""
    app, client = app_client
    aw.sql("UPDATE restaurants SET timezone = 'America/Los_Angeles' WHERE id = %s", (aw.rid,))
    app.dependency_overrides[get_clock] = lambda: lambda: datetime(2025, 3, 2, 2, 30, tzinfo=UTC)
    resp = await client.post(PATH, json={"restaurantId": str(aw.rid)}, headers=aw.auth("owner"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["date"] == "2025-03-01"
    resp = await client.post(PATH, json={"restaurantId": str(aw.rid), "date": None}, headers=aw.auth("owner"))
    assert resp.json()["date"] == "2025-03-01"


def test_blank_timezone_means_europe_london() -> None:
    # a blank value cannot be stored (docs/assign-tables.md §4); read from a hand-built fixture it is London, not UTC
    assert repo.today_in("  ", datetime(2025, 6, 30, 23, 30, tzinfo=UTC)).isoformat() == "2025-07-01"
    assert repo.today_in(None, datetime(2025, 6, 30, 23, 30, tzinfo=UTC)).isoformat() == "2025-07-01"


async def test_capture_decisions_defaults_to_true(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    """Case 42; the response and each decision say which planner produced the plan."""
    body = (await aw.assign(client, dryRun=True)).json()
    assert len(body["decisions"]) == 2
    assert body["planner"] in ("greedy", "lns", "greedy-fallback")
    assert all(d["planner"] == body["planner"] for d in body["decisions"])
    body = (await aw.assign(client, captureDecisions=False)).json()
    assert "decisions" not in body
    assert len(body["assigned"]) == 2


async def test_empty_day_is_200_with_empty_lists(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    resp = await client.post(PATH, json={"restaurantId": str(aw.rid), "date": "2031-06-14"}, headers=aw.auth("owner"))
    assert resp.json() == {"date": "2031-06-14", "assigned": [], "skipped": [], "serviceFallbacks": [],
                           "decisions": [], "planner": resp.json()["planner"], "dryRun": False,
                           "bound": {"upperBound": 0, "optimal": True, "method": "candidates"}}


# ------------------------------------------------------------------------------------------------------
# commit path (docs/assign-tables.md §8, cases 43-46)
# ------------------------------------------------------------------------------------------------------
async def test_commit_writes_the_block_window_and_a_deterministic_key(
    aw: AssignWorld, client: httpx.AsyncClient
) -> None:
    """Case 43 (single tables): one row per table with the plan's block window, assigned_by = caller, a
    deterministic idempotency key recorded in booking_assignment_idempotency."""
    dry = (await aw.assign(client, dryRun=True)).json()
    resp = await aw.assign(client)
    body = resp.json()
    assert body["assigned"] == dry["assigned"]  # same snapshot, same plan
    assert body["skipped"] == [] and len(body["serviceFallbacks"]) == 2
    windows = {d["bookingId"]: d["window"] for d in body["decisions"]}
    for entry in body["assigned"]:
        rows = aw.sql(
            """SELECT table_id::text, start_at, end_at, idempotency_key FROM booking_table_assignments
                WHERE booking_id = %s ORDER BY table_id""", (entry["bookingId"],))
        assert sorted(r[0] for r in rows) == sorted(entry["tableIds"])
        w = windows[entry["bookingId"]]
        for _, start, end, key in rows:
            assert start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") == w["start"]
            assert end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") == w["end"]
            assert key and key.startswith("auto-assign:")
        ledger = aw.sql("SELECT idempotency_key, table_ids FROM booking_assignment_idempotency WHERE booking_id = %s",
                        (entry["bookingId"],))
        assert [(k, sorted(str(t) for t in ids)) for k, ids in ledger] == [(rows[0][3], sorted(entry["tableIds"]))]
    # B1 ends 20:00 local (19:00Z) and the restaurant respects the stored end: block end 19:05Z
    assert windows[str(aw.floor.b1)] == {"start": "2031-06-13T17:00:00Z", "end": "2031-06-13T19:05:00Z"}


async def test_a_resent_request_is_a_no_op(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    """Case 46: bookings assigned by the first run are absent from the second; no second table set."""
    first = (await aw.assign(client)).json()
    before, written = aw.assignments(), _written(aw)
    second = (await aw.assign(client)).json()
    assert len(first["assigned"]) == 2
    assert (second["assigned"], second["skipped"], second["serviceFallbacks"], second["decisions"]) == ([], [], [], [])
    assert aw.assignments() == before and _written(aw) == written


async def test_commit_refuses_a_second_table_set_and_accepts_the_same_one(aw: AssignWorld, client) -> None:
    """docs/assign-tables.md §8.5 [REC] in the service's commit transaction: the booking row is locked and a booking holding
    tables never gets another set; the identical set is reported as a retry, nothing written."""
    body = (await aw.assign(client)).json()
    b1 = next(a for a in body["assigned"] if a["bookingId"] == str(aw.floor.b1))
    other = next(t for t in (aw.table("t1"), aw.table("t4")) if t not in b1["tableIds"])
    app_engine = client._transport.app.state.engine  # type: ignore[attr-defined]
    start, end = datetime(2031, 6, 13, 17, 0, tzinfo=UTC), datetime(2031, 6, 13, 19, 5, tzinfo=UTC)
    before = _written(aw)
    kw = dict(idempotency_key="manual-retry", require_adjacency=False, assigned_by=None, start_at=start, end_at=end)
    async with repo.commit_connection(app_engine) as pg:
        refused = await repo.commit_assignment(pg, aw.rid, str(aw.floor.b1), (other,), **kw)
        same = await repo.commit_assignment(pg, aw.rid, str(aw.floor.b1), tuple(b1["tableIds"]), **kw)
    assert (refused.ok, refused.code) == (False, "ASSIGNMENT_CONFLICT")
    # a booking cancelled after the day was read is not assigned
    cancelled = aw.booking(2, "21:00", "22:00", status="cancelled")
    late = dict(kw, start_at=datetime(2031, 6, 13, 20, 0, tzinfo=UTC), end_at=datetime(2031, 6, 13, 21, 5, tzinfo=UTC))
    async with repo.commit_connection(app_engine) as pg:
        gone = await repo.commit_assignment(pg, aw.rid, str(cancelled), (aw.table("t1"),), **late)
    assert (gone.ok, gone.code, gone.message) == (False, "ASSIGNMENT_VALIDATION", "booking is cancelled")
    assert same.ok and same.already_assigned
    assert _written(aw) == before


async def test_booking_already_holding_a_table_is_never_touched(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    from tests.support.floor import commit

    commit(aw.db_url, aw.floor.b2, [aw.floor.t4])
    body = (await aw.assign(client)).json()
    ids = {a["bookingId"] for a in body["assigned"]} | {s["bookingId"] for s in body["skipped"]}
    assert ids == {str(aw.floor.b1)}
    assert aw.assignments()[str(aw.floor.b2)] == {aw.table("t4")}


async def test_status_filter(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    """Case 4: cancelled/completed bookings are in none of the lists."""
    cancelled = aw.booking(4, "19:00", "21:00", status="cancelled")
    completed = aw.booking(2, "18:00", "20:00", status="completed")
    pending = aw.booking(3, "20:00", "22:00", status="pending_allocation")
    body = (await aw.assign(client)).json()
    seen = {a["bookingId"] for a in body["assigned"]} | {s["bookingId"] for s in body["skipped"]}
    assert str(pending) in seen
    assert str(cancelled) not in seen and str(completed) not in seen
    # the endpoint does not change booking status (docs/assign-tables.md §1)
    assert aw.sql("SELECT status::text FROM bookings WHERE id = %s", (pending,)) == [("pending_allocation",)]


async def test_capacity_exceeded_is_a_skip_without_a_second_plan(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    """Case 44: CA001 capacity_exceeded_post_assignment → CAPACITY_EXCEEDED at once (one attempt)."""
    aw.sql("INSERT INTO restaurant_capacity_rules (restaurant_id, service_period_id, max_covers) VALUES (%s, %s, 5)",
           (aw.rid, aw.floor.dinner))
    resp = await aw.assign(client)
    assert resp.status_code == 200
    body = resp.json()
    assert body["assigned"] == []
    assert {(s["bookingId"], s["reasonCode"]) for s in body["skipped"]} == {
        (str(aw.floor.b1), "CAPACITY_EXCEEDED"), (str(aw.floor.b2), "CAPACITY_EXCEEDED")}
    assert all(d["commit"]["attempts"] == 1 and d["commit"]["sqlstate"] == "CA001" for d in body["decisions"])
    assert {d["reasonCode"] for d in body["decisions"]} == {"CAPACITY_EXCEEDED"}
    assert _written(aw) == (0, 0, 0)


async def test_commit_conflict_tries_the_next_plan(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    """A hold the planner cannot see (a hold window without members) makes the planned table conflict at
    commit: the next conflict-free plan is committed instead (docs/assign-tables.md §7.11 [REC])."""
    dry = (await aw.assign(client, dryRun=True)).json()
    planned = {a["bookingId"]: a["tableIds"] for a in dry["assigned"]}
    blocked = planned[str(aw.floor.b1)]
    hold = uuid.uuid4()
    aw.sql("""INSERT INTO table_holds (id, restaurant_id, zone_id, start_at, end_at, expires_at)
              VALUES (%s, %s, %s, '2031-06-13 16:00Z', '2031-06-13 22:00Z', now() + interval '1 day')""",
           (hold, aw.rid, aw.floor.zone))
    for t in blocked:
        aw.sql("""INSERT INTO table_hold_windows (hold_id, table_id, restaurant_id, start_at, end_at, expires_at)
                  VALUES (%s, %s, %s, '2031-06-13 16:00Z', '2031-06-13 22:00Z', now() + interval '1 day')""",
               (hold, t, aw.rid))
    body = (await aw.assign(client)).json()
    got = {a["bookingId"]: a["tableIds"] for a in body["assigned"]}
    assert str(aw.floor.b1) in got and not set(got[str(aw.floor.b1)]) & set(blocked)
    decision = next(d for d in body["decisions"] if d["bookingId"] == str(aw.floor.b1))
    assert decision["commit"]["attempts"] == 2 and decision["commit"]["alternativeUsed"] is True


async def test_commit_conflict_on_every_plan_is_an_assignment_conflict_skip(
    aw: AssignWorld, client: httpx.AsyncClient
) -> None:
    """Case 44: every tried plan conflicts → skip ASSIGNMENT_CONFLICT with the original's sentence, 200."""
    hold = uuid.uuid4()
    aw.sql("""INSERT INTO table_holds (id, restaurant_id, zone_id, start_at, end_at, expires_at)
              VALUES (%s, %s, %s, '2031-06-13 16:00Z', '2031-06-13 22:00Z', now() + interval '1 day')""",
           (hold, aw.rid, aw.floor.zone))
    for t in ("t1", "t2", "t3", "t4"):
        aw.sql("""INSERT INTO table_hold_windows (hold_id, table_id, restaurant_id, start_at, end_at, expires_at)
                  VALUES (%s, %s, %s, '2031-06-13 16:00Z', '2031-06-13 22:00Z', now() + interval '1 day')""",
               (hold, getattr(aw.floor, t), aw.rid))
    resp = await aw.assign(client)
    assert resp.status_code == 200
    body = resp.json()
    assert body["assigned"] == []
    for skip in body["skipped"]:
        assert skip["reasonCode"] == "ASSIGNMENT_CONFLICT"
        assert skip["reason"] == "Auto assign skipped: Supabase reported an overlapping assignment"
    assert len(body["skipped"]) == 2
    assert all(d["commit"]["attempts"] >= 2 and d["skipReason"] for d in body["decisions"])
    assert _written(aw) == (0, 0, 0)


async def test_visible_hold_blocks_planning(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    """Case 12 with stored holds: every table held → CONFLICTS_EXISTING, no commit made."""
    hold = uuid.uuid4()
    aw.sql("""INSERT INTO table_holds (id, restaurant_id, zone_id, start_at, end_at, expires_at)
              VALUES (%s, %s, %s, '2031-06-13 16:00Z', '2031-06-13 22:00Z', now() + interval '1 day')""",
           (hold, aw.rid, aw.floor.zone))
    for t in ("t1", "t2", "t3", "t4"):
        aw.sql("INSERT INTO table_hold_members (hold_id, table_id) VALUES (%s, %s)", (hold, getattr(aw.floor, t)))
    body = (await aw.assign(client)).json()
    assert [s["reasonCode"] for s in body["skipped"]] == ["CONFLICTS_EXISTING", "CONFLICTS_EXISTING"]
    assert body["skipped"][0]["reason"].startswith("Conflicts with existing holds")
    assert _written(aw) == (0, 0, 0)


async def test_dry_run_writes_nothing(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    before = aw.sql("SELECT count(*) FROM booking_slots")[0][0]
    body = (await aw.assign(client, dryRun=True)).json()
    assert body["dryRun"] is True and len(body["assigned"]) == 2 and len(body["decisions"]) == 2
    assert "commit" not in body["decisions"][0]
    assert _written(aw) == (0, 0, 0)
    assert aw.sql("SELECT count(*) FROM booking_slots")[0][0] == before
    assert aw.sql("SELECT count(*) FROM bookings WHERE assigned_zone_id IS NOT NULL AND restaurant_id = %s",
                  (aw.rid,)) == [(0,)]


async def test_strategic_override_reaches_the_planner(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    """Case 48 through the resolver: a restaurant row's demand multiplier override is what d is."""
    aw.sql("INSERT INTO strategic_configs (restaurant_id, scarcity_weight, demand_multiplier_override) "
           "VALUES (%s, 22, 3)", (aw.rid,))
    body = (await aw.assign(client, dryRun=True)).json()
    cfg = body["decisions"][0]["plannerConfig"]
    assert cfg["demandMultiplier"] == 3
    assert cfg["demandRule"]["source"] == "strategic_override"
    assert cfg["strategicConfig"]["scope"] == "restaurant"


# ------------------------------------------------------------------------------------------------------
# run lock (docs/assign-tables.md §8.5, case 45)
# ------------------------------------------------------------------------------------------------------
async def test_a_held_run_lock_is_409_at_once(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    name = repo.run_lock_name(aw.rid, aw.floor.date)
    with psycopg.connect(aw.db_url, autocommit=True) as holder:
        assert holder.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (name,)).fetchone()[0]
        resp = await aw.assign(client)
        body = _problem(resp, 409, "ASSIGNMENT_RUN_IN_PROGRESS")
        assert resp.headers["Retry-After"].isdigit()
        assert body["status"] == 409
        assert _written(aw) == (0, 0, 0)
        # a dry run writes nothing and does not need the lock
        assert (await aw.assign(client, dryRun=True)).status_code == 200
        # another date of the same restaurant is not blocked
        other_day = {"restaurantId": str(aw.rid), "date": "2031-06-14"}
        assert (await client.post(PATH, json=other_day, headers=aw.auth("owner"))).status_code == 200
    # released with the holder's session: the run goes through
    assert (await aw.assign(client)).status_code == 200
    # and the service released its own lock after the run
    with psycopg.connect(aw.db_url, autocommit=True) as probe:
        assert probe.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (name,)).fetchone()[0]


async def test_each_run_logs_one_summary(aw: AssignWorld, client: httpx.AsyncClient, caplog) -> None:
    aw.booking(12, "19:00", "21:00", status="pending_allocation")  # nothing seats 12
    with caplog.at_level(logging.INFO, logger="capacity.assign_tables"):
        assert (await aw.assign(client)).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "capacity.assign_tables"]
    assert len(lines) == 1
    assert "evaluated=3 assigned=2 skipped=1" in lines[0]
    assert '"NO_SUITABLE_TABLES": 1' in lines[0] and "commit_ms=" in lines[0] and "total_ms=" in lines[0]


async def test_a_database_older_than_the_service_is_503_not_ready_with_nothing_written(
    aw: AssignWorld, client: httpx.AsyncClient
) -> None:
    """New code deployed before `migrate` (0007's commit function absent): the run stops at the first commit
    with 503 NOT_READY naming what is missing, instead of 200 with every booking skipped."""
    from service.schema.released.capacity_functions import COMMIT_PLANNED_ASSIGNMENT

    aw.sql(f"DROP FUNCTION {COMMIT_PLANNED_ASSIGNMENT.signature}")
    before = _written(aw)
    dry = await aw.assign(client, dryRun=True)  # planning needs no commit function
    assert dry.status_code == 200 and len(dry.json()["assigned"]) == 2
    resp = await aw.assign(client)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "30"
    problem = resp.json()
    assert problem["code"] == "NOT_READY"
    assert "commit_planned_assignment" in problem["message"] and "capacity-service migrate" in problem["message"]
    assert _written(aw) == before


async def test_a_missing_column_when_reading_the_day_is_503_not_ready(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    """Schema drift met while reading the day is a schema problem, not an outage: NOT_READY, not
    DATABASE_UNAVAILABLE, for dry runs and real runs alike."""
    aw.sql("ALTER TABLE table_holds DROP COLUMN expires_at CASCADE")
    for extra in ({"dryRun": True}, {}):
        resp = await aw.assign(client, **extra)
        assert resp.status_code == 503
        assert resp.json()["code"] == "NOT_READY" and "expires_at" in resp.json()["message"]


async def test_feature_flag_overrides_apply_for_the_configured_environment(aw: AssignWorld) -> None:
    """feature_flag_overrides rows are per environment (docs/assign-tables.md §5): a staging row changes a
    staging deployment's run, not a production one's (CAPACITY_ENVIRONMENT, default production)."""
    from tests.api.conftest import make_settings, running_app

    aw.sql("""INSERT INTO feature_flag_overrides (flag, environment, value)
              VALUES ('allocator.service.fail_hard', 'staging', true)""")

    async def fail_hard(environment: str) -> set[bool]:
        settings = make_settings(aw.db_url, strategic_config_listen=False, environment=environment)
        async with running_app(settings) as (_, http):
            body = (await aw.assign(http, dryRun=True)).json()
        return {d["featureFlags"]["allocatorFailHard"] for d in body["decisions"]}

    assert await fail_hard("production") == {False}
    assert await fail_hard("staging") == {True}


async def test_each_run_is_counted_in_the_assign_metrics(aw: AssignWorld, client: httpx.AsyncClient) -> None:
    from tests.app.test_observability import samples

    dry = (await aw.assign(client, dryRun=True)).json()
    real = (await aw.assign(client)).json()
    text = (await client.get("/metrics")).text
    runs = samples(text, "assign_runs_total")
    assert runs[(("dry_run", "true"), ("planner", dry["planner"]))] == 1
    assert runs[(("dry_run", "false"), ("planner", real["planner"]))] == 1
    assigned = samples(text, "assign_bookings_assigned_total")
    assert assigned[(("dry_run", "false"), ("planner", real["planner"]))] == len(real["assigned"])
