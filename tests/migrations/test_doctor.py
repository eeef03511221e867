"""Schema doctor (docs/schema.md §6.3) and its acceptance cases 1, 32, 39–42, run against real PostgreSQL.

Each test clones the migrated template (``head_db``), alters it the way the case describes, and checks the
findings. Roles are cluster-wide, so a test that needs its own login creates one with a unique name and
drops only that role.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from service.schema import doctor, migrate
from tests.support import pg

REPO_ROOT = migrate.REPO_ROOT

ALLOCATIONS_NO_OVERLAP = "allocations.allocations_no_overlap"


@contextlib.contextmanager
def connect(url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def findings_of(url: str, **kwargs) -> list[doctor.Finding]:
    with connect(url) as conn:
        return doctor.diagnose(conn, **kwargs)


def codes(findings: list[doctor.Finding], severity: str | None = None) -> set[tuple[str, str]]:
    return {(f.code, f.object) for f in findings if severity is None or f.severity == severity}


def at_least(findings: list[doctor.Finding], severity: str) -> list[doctor.Finding]:
    rank = doctor.SEVERITIES.index(severity)
    return [f for f in findings if doctor.SEVERITIES.index(f.severity) >= rank]


@contextlib.contextmanager
def login_role(url: str, *grants: str, attributes: str = "") -> Iterator[str]:
    """A throw-away LOGIN role (unique name, dropped afterwards); yields a URL connecting as it."""
    name = f"doctor_rt_{uuid.uuid4().hex[:10]}"
    pg.run(url, f"CREATE ROLE {name} LOGIN {attributes}")
    try:
        for grant in grants:
            pg.run(url, f"GRANT {grant} TO {name}")
        yield make_url(url).set(username=name, password=None).render_as_string(hide_password=False)
    finally:
        # The role owns nothing; DROP OWNED clears its grants in this database before it goes.
        pg.run(url, f"DROP OWNED BY {name}")
        pg.run(url, f"DROP ROLE {name}")


# --------------------------------------------------------------------------------------------------
# greenfield head (case 1) and the manifest
# --------------------------------------------------------------------------------------------------
def test_greenfield_head_has_no_finding_at_warning_level(head_db: str) -> None:
    findings = findings_of(head_db, runtime_role="capacity_app")
    assert at_least(findings, "warning") == [], doctor.render_text(findings)
    assert doctor.exit_code(findings, "warning") == 0


def test_greenfield_head_is_ready_for_a_service_login(head_db: str) -> None:
    """Case 1/32 from the service's side: a LOGIN role in service_role passes the readiness subset
    (0001 lets service_role read the version row it compares with head)."""
    with login_role(head_db, "service_role") as runtime_url, connect(runtime_url) as conn:
        findings = doctor.readiness_findings(conn)
    assert findings == [], doctor.render_text(findings)


def test_full_check_run_as_the_service_login(head_db: str) -> None:
    # The catalog is visible to any role, so the full check also works on the service's own connection.
    with login_role(head_db, "service_role") as runtime_url, connect(runtime_url) as conn:
        findings = doctor.diagnose(conn)
    blocking = [f for f in at_least(findings, "warning") if f.code != "version_unreadable"]
    assert blocking == [], doctor.render_text(findings)
    assert [f.code for f in findings if f.code == "runtime_role_bypasses_rls"] == []


def test_manifest_is_fresh(head_db: str) -> None:
    """Drift between the revisions and the committed manifest: regenerate it (see the service.schema.doctor package docstring)."""
    with connect(head_db) as conn:
        built = json.loads(doctor.manifest_text(doctor.build_manifest(conn)))
    committed = doctor.load_manifest()
    for section in sorted(set(built) | set(committed)):
        assert built.get(section) == committed.get(section), (
            f"manifest section {section!r} is stale: run "
            "`uv run python -m service.schema.doctor --write-manifest <url of a database at head>`"
        )


def test_manifest_covers_the_objects_the_checks_rely_on() -> None:
    manifest = doctor.load_manifest()
    assert manifest["head"] == migrate.HEAD == doctor.HEAD_REVISION
    assert ALLOCATIONS_NO_OVERLAP in manifest["constraints"]
    assert "merge_group_id" in manifest["tables"]["booking_table_assignments"]["columns"]
    assert "btree_gist" in manifest["extensions"]
    assert any(f["name"] == "validate_booking_capacity_after_assignment" for f in manifest["functions"].values())
    assert all(fn["marker"] and fn["marker"].startswith("capacity-service:") for fn in manifest["functions"].values())


# --------------------------------------------------------------------------------------------------
# runtime role (case 32, docs/schema.md §4.2 rule 1)
# --------------------------------------------------------------------------------------------------
def test_superuser_connection_is_not_ready(head_db: str) -> None:
    with connect(head_db) as conn:
        readiness = doctor.readiness_findings(conn)
        operator_view = doctor.diagnose(conn)
    assert ("runtime_role_bypasses_rls", "error") in {(f.code, f.severity) for f in readiness}
    # The operator running the doctor as the migration superuser gets a hint, not an error.
    assert [f.severity for f in operator_view if f.code == "runtime_role_bypasses_rls"] == ["info"]


def test_table_owner_connection_is_not_ready(head_db: str) -> None:
    with connect(head_db) as conn:
        conn.execute("SET ROLE capacity_owner")
        readiness = doctor.readiness_findings(conn)
    [finding] = [f for f in readiness if f.code == "runtime_role_bypasses_rls"]
    assert finding.severity == "error" and "allocations" in finding.actual


def test_named_runtime_role_with_bypassrls_is_an_error(head_db: str) -> None:
    with login_role(head_db, "service_role", attributes="BYPASSRLS") as runtime_url:
        role = make_url(runtime_url).username
        findings = findings_of(head_db, runtime_role=role)
        with connect(runtime_url) as conn:
            readiness = doctor.readiness_findings(conn)
    assert ("runtime_role_bypasses_rls", role) in codes(findings, "error")
    assert ("runtime_role_bypasses_rls", role) in codes(readiness, "error")


# --------------------------------------------------------------------------------------------------
# drift cases 39–42
# --------------------------------------------------------------------------------------------------
def test_case_39_seed_002_rollback_shape_is_constraint_shape_mismatch(head_db: str) -> None:
    pg.run(
        head_db,
        """ALTER TABLE public.allocations DROP CONSTRAINT allocations_no_overlap;
           ALTER TABLE public.allocations ADD CONSTRAINT allocations_no_overlap
             EXCLUDE USING gist (resource_id WITH =, "window" WITH &&) WHERE (shadow = false);""",
    )
    findings = findings_of(head_db, runtime_role="capacity_app")
    assert ("constraint_shape_mismatch", ALLOCATIONS_NO_OVERLAP) in codes(findings, "error")
    assert doctor.exit_code(findings, "error") == 1
    with connect(head_db) as conn:
        readiness = doctor.readiness_findings(conn)
    assert ("constraint_shape_mismatch", ALLOCATIONS_NO_OVERLAP) in codes(readiness, "error")


def test_target_columns_but_initially_deferred_is_a_shape_mismatch(head_db: str) -> None:
    pg.run(
        head_db,
        """ALTER TABLE public.allocations DROP CONSTRAINT allocations_no_overlap;
           ALTER TABLE public.allocations ADD CONSTRAINT allocations_no_overlap
             EXCLUDE USING gist (restaurant_id WITH =, resource_type WITH =, resource_id WITH =, "window" WITH &&)
             WHERE (NOT shadow) DEFERRABLE INITIALLY DEFERRED;""",
    )
    assert ("constraint_shape_mismatch", ALLOCATIONS_NO_OVERLAP) in codes(findings_of(head_db), "error")


def test_missing_no_overlap_constraint_is_an_error(head_db: str) -> None:
    pg.run(head_db, "ALTER TABLE public.allocations DROP CONSTRAINT allocations_no_overlap")
    findings = findings_of(head_db)
    assert [f.actual for f in findings if f.object == ALLOCATIONS_NO_OVERLAP] == ["missing"]


UNGUARDED_BODY = """
CREATE OR REPLACE FUNCTION public.validate_booking_capacity_after_assignment(p_booking_id uuid)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    v_max integer;
BEGIN
    SELECT max_covers INTO v_max FROM public.restaurant_capacity_rules LIMIT 1;
END
$fn$;"""


def test_case_40_unguarded_function_recreated_by_hand(head_db: str) -> None:
    pg.run(head_db, UNGUARDED_BODY)
    findings = findings_of(head_db, runtime_role="capacity_app")
    sig = "validate_booking_capacity_after_assignment(uuid)"
    assert ("function_body_mismatch", sig) in codes(findings, "error")
    assert ("unguarded_optional_table_reference", sig) in codes(findings, "error")


def test_function_left_as_found_on_adoption_is_not_drift(head_db: str) -> None:
    """0001 keeps the booking domain's set_booking_instants() on an adopted database (ledger: adopted)."""
    pg.run(
        head_db,
        """CREATE OR REPLACE FUNCTION public.set_booking_instants() RETURNS trigger LANGUAGE plpgsql
             AS $fn$ BEGIN RETURN NEW; END $fn$;
           COMMENT ON FUNCTION public.set_booking_instants() IS NULL;
           UPDATE public.capacity_schema_ledger SET action = 'adopted'
            WHERE object_kind = 'function' AND object_name = 'public.set_booking_instants()';""",
    )
    findings = findings_of(head_db, runtime_role="capacity_app")
    assert ("function_not_owned", "set_booking_instants()") in codes(findings, "info")
    assert [f for f in findings if f.severity == "error"] == [], doctor.render_text(findings)
    with connect(head_db) as conn:
        assert [f for f in doctor.readiness_findings(conn) if f.object == "set_booking_instants()"] == []
    # Without the ledger saying so, the same body is drift.
    pg.run(head_db, "UPDATE public.capacity_schema_ledger SET action = 'created' WHERE object_kind = 'function'")
    assert ("function_body_mismatch", "set_booking_instants()") in codes(findings_of(head_db), "error")


def test_case_41_extra_bookings_column_is_info_only(head_db: str) -> None:
    pg.run(head_db, "ALTER TABLE public.bookings ADD COLUMN loyalty_tier text")
    findings = findings_of(head_db, runtime_role="capacity_app")
    assert ("extra_column", "bookings.loyalty_tier") in codes(findings, "info")
    assert at_least(findings, "warning") == [], doctor.render_text(findings)
    assert doctor.exit_code(findings, "error") == 0


def test_case_42_invalid_index_is_an_error_and_rerunning_its_revision_rebuilds_it(head_db: str) -> None:
    index = "booking_table_assignments_merge_group_idx"  # built concurrently by 0002_merge_groups
    pg.run(head_db, f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'public.{index}'::regclass")
    assert ("index_invalid", index) in codes(findings_of(head_db), "error")

    # Re-run the owning revision and everything after it (each step is idempotent).
    pg.run(head_db, "UPDATE public.capacity_alembic_version SET version_num = '0001_base'")
    migrate.upgrade(head_db, "head")
    assert pg.run(head_db, f"SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.{index}'::regclass") == [(True,)]
    findings = findings_of(head_db, runtime_role="capacity_app")
    assert at_least(findings, "warning") == [], doctor.render_text(findings)


# --------------------------------------------------------------------------------------------------
# further docs/schema.md §6.3 rules
# --------------------------------------------------------------------------------------------------
def test_merge_group_id_dropped_is_an_error(head_db: str) -> None:
    pg.run(head_db, "ALTER TABLE public.booking_table_assignments DROP COLUMN merge_group_id CASCADE")
    obj = "booking_table_assignments.merge_group_id"
    assert ("merge_group_id_missing", obj) in codes(findings_of(head_db), "error")
    with connect(head_db) as conn:
        assert ("merge_group_id_missing", obj) in codes(doctor.readiness_findings(conn), "error")


def test_strategic_configs_dropped_is_a_degraded_warning(head_db: str) -> None:
    pg.run(head_db, "DROP TABLE public.strategic_configs CASCADE")
    findings = findings_of(head_db, runtime_role="capacity_app")
    assert [f.severity for f in findings if f.code == "strategic_config_degraded"] == ["warning"]
    assert [f for f in findings if f.severity == "error"] == [], doctor.render_text(findings)
    with connect(head_db) as conn:
        assert doctor.strategic_config_schema_state(conn) == "table_missing"
        readiness = doctor.readiness_findings(conn)
    assert [(f.code, f.actual) for f in readiness if f.code == "strategic_config_degraded"] == [
        ("strategic_config_degraded", "table_missing")
    ]


def test_strategic_configs_legacy_json_only_is_a_degraded_warning(head_db: str) -> None:
    pg.run(
        head_db,
        """ALTER TABLE public.strategic_configs DROP COLUMN scarcity_weight;
           ALTER TABLE public.strategic_configs ADD COLUMN weights jsonb;""",
    )
    with connect(head_db) as conn:
        assert doctor.strategic_config_schema_state(conn) == "legacy_json_only"
        findings = doctor.diagnose(conn, runtime_role="capacity_app")
    assert [f.actual for f in findings if f.code == "strategic_config_degraded"] == ["legacy_json_only"]
    assert [f for f in findings if f.severity == "error"] == [], doctor.render_text(findings)


@pytest.mark.parametrize(
    ("columns", "state"),
    [
        (None, "table_missing"),
        (["id", "restaurant_id", "scarcity_weight", "updated_at"], "columns_missing"),
        (["id", "weights", "updated_at"], "legacy_json_only"),
        (["id", "weights", *doctor.PROBE_COLUMNS], "legacy_json_present"),
        (["id", "weights_legacy", *doctor.PROBE_COLUMNS], "ok"),
    ],
)
def test_strategic_config_probe_states(columns: list[str] | None, state: str) -> None:
    assert doctor.strategic_config_state(columns) == state


def test_capacity_rules_absent_is_a_warning(head_db: str) -> None:
    pg.run(head_db, "DROP TABLE public.restaurant_capacity_rules")
    findings = findings_of(head_db, runtime_role="capacity_app")
    assert codes(findings, "warning") == {("capacity_rules_absent", "restaurant_capacity_rules")}
    assert [f for f in findings if f.severity == "error"] == []


def test_extra_overload_of_an_owned_function_is_an_error(head_db: str) -> None:
    pg.run(
        head_db,
        """CREATE FUNCTION public.assign_tables_atomic_v2(p_booking_id uuid, p_table_ids uuid[], p_key text,
                                                       p_adj boolean, p_by uuid)
           RETURNS void LANGUAGE plpgsql AS $fn$ BEGIN END $fn$""",
    )
    findings = findings_of(head_db)
    assert ("function_extra_overload", "assign_tables_atomic_v2(uuid, uuid[], text, boolean, uuid)") in codes(
        findings, "error"
    )


def test_kill_switch_off_at_database_level_is_a_warning(head_db: str) -> None:
    dbname = make_url(head_db).database
    pg.run(head_db, f"ALTER DATABASE {dbname} SET app.capacity.post_assignment.enabled = 'OFF'")
    findings = findings_of(head_db, runtime_role="capacity_app")
    assert ("kill_switch_off", f"database {dbname}") in codes(findings, "warning")


def test_permissive_service_policies(head_db: str) -> None:
    pg.run(
        head_db,
        """CREATE POLICY service_role_all_access ON public.restaurants FOR ALL TO service_role USING (true);
           CREATE POLICY "Service role can manage allocations" ON public.allocations
             FOR ALL TO service_role USING (true) WITH CHECK (true);""",
    )
    findings = findings_of(head_db, runtime_role="capacity_app")
    assert ("permissive_service_policy", "restaurants.service_role_all_access") in codes(findings, "warning")
    assert ("permissive_service_policy", "allocations.Service role can manage allocations") in codes(
        findings, "error"
    )


def test_version_table_not_at_head_and_unknown_revision(head_db: str) -> None:
    pg.run(head_db, "UPDATE public.capacity_alembic_version SET version_num = '0003_overlap_confirm_cache'")
    assert ("version_not_head", "capacity_alembic_version") in codes(findings_of(head_db), "error")
    pg.run(head_db, "INSERT INTO public.capacity_alembic_version VALUES ('0007_future_thing')")
    assert ("version_unknown_revision", "capacity_alembic_version") in codes(findings_of(head_db), "error")


def test_foreign_history_tables_are_info(head_db: str) -> None:
    pg.run(
        head_db,
        """CREATE TABLE public.alembic_version (version_num varchar(32) PRIMARY KEY);
           CREATE SCHEMA supabase_migrations;
           CREATE TABLE supabase_migrations.schema_migrations (version text PRIMARY KEY);
           INSERT INTO supabase_migrations.schema_migrations SELECT g::text FROM generate_series(1, 29) g;""",
    )
    findings = findings_of(head_db, runtime_role="capacity_app")
    info = {f.code: f for f in findings if f.severity == "info"}
    assert "foreign_alembic_version" in info
    assert info["supabase_migration_history"].actual == "29 versions"
    assert at_least(findings, "warning") == [], doctor.render_text(findings)


def test_not_valid_constraint_and_owner_change_are_warnings(head_db: str) -> None:
    pg.run(
        head_db,
        """ALTER TABLE public.allocations DROP CONSTRAINT allocations_window_valid;
           ALTER TABLE public.allocations ADD CONSTRAINT allocations_window_valid
             CHECK (NOT isempty("window") AND NOT lower_inf("window") AND NOT upper_inf("window")) NOT VALID;
           ALTER TABLE public.zones OWNER TO postgres;""",
    )
    findings = findings_of(head_db, runtime_role="capacity_app")
    warnings = codes(findings, "warning")
    assert ("constraint_not_validated", "allocations.allocations_window_valid") in warnings
    assert ("owner_mismatch", "zones") in warnings


def test_adopted_updated_at_trigger_under_another_name_is_not_drift(head_db: str) -> None:
    pg.run(
        head_db,
        """DROP TRIGGER zones_updated_at ON public.zones;
           CREATE FUNCTION public.update_updated_at_column() RETURNS trigger LANGUAGE plpgsql
             AS $fn$ BEGIN NEW.updated_at := now(); RETURN NEW; END $fn$;
           CREATE TRIGGER update_zones_updated_at BEFORE UPDATE ON public.zones
             FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();
           DROP TRIGGER trg_allocations_refresh ON public.allocations;""",
    )
    findings = findings_of(head_db, runtime_role="capacity_app")
    assert ("trigger_adopted_equivalent", "zones.zones_updated_at") in codes(findings, "info")
    # A missing trigger with no equivalent is still reported.
    assert codes(findings, "warning") == {("trigger_missing", "allocations.trg_allocations_refresh")}


def cli_doctor(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPACITY_")}
    env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "doctor", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def test_cli_doctor_exit_codes_cases_1_39_41(head_db: str) -> None:
    # Case 1: run by the operator as the migration superuser, greenfield head passes --fail-on warning.
    clean = cli_doctor(head_db, "--fail-on", "warning", "--format", "json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert {f["severity"] for f in json.loads(clean.stdout)["findings"]} <= {"info"}

    pg.run(head_db, "ALTER TABLE public.bookings ADD COLUMN loyalty_tier text")  # case 41
    assert cli_doctor(head_db, "--fail-on", "error").returncode == 0

    pg.run(  # case 39
        head_db,
        """ALTER TABLE public.allocations DROP CONSTRAINT allocations_no_overlap;
           ALTER TABLE public.allocations ADD CONSTRAINT allocations_no_overlap
             EXCLUDE USING gist (resource_id WITH =, "window" WITH &&) WHERE (shadow = false);""",
    )
    drifted = cli_doctor(head_db, "--fail-on", "error")
    assert drifted.returncode == 1
    assert "constraint_shape_mismatch" in drifted.stdout and "allocations_no_overlap" in drifted.stdout


# --------------------------------------------------------------------------------------------------
# output helpers
# --------------------------------------------------------------------------------------------------
def test_exit_code_thresholds_and_renderers() -> None:
    info = doctor.Finding("extra_column", "info", "bookings.x")
    warning = doctor.Finding("owner_mismatch", "warning", "zones", "capacity_owner", "postgres")
    assert doctor.exit_code([], "warning") == 0
    assert doctor.exit_code([info], "warning") == 0
    assert doctor.exit_code([info, warning], "warning") == 1
    assert doctor.exit_code([info, warning], "error") == 0
    assert json.loads(doctor.render_json([warning]))["findings"][0] == {
        "code": "owner_mismatch", "severity": "warning", "object": "zones",
        "expected": "capacity_owner", "actual": "postgres",
    }
    assert "owner_mismatch" in doctor.render_text([warning])


def test_normalisation_ignores_spelling_not_shape() -> None:
    a = doctor.normalize_sql('EXCLUDE USING gist (resource_id WITH =, "window" WITH &&) WHERE ((NOT shadow)) DEFERRABLE')
    b = doctor.normalize_sql("exclude using gist (resource_id with =, window with &&) where ((not shadow))")
    assert a == b
    assert doctor.normalize_sql("CHECK ((status)::text = 'x'::text) NOT VALID") == doctor.normalize_sql(
        "CHECK (status = 'x')"
    )
    assert doctor.normalize_sql("FOREIGN KEY (a) REFERENCES public.t(id)") == doctor.normalize_sql(
        "FOREIGN KEY (a) REFERENCES t(id)"
    )
    assert doctor.normalize_sql("WHERE (shadow = false)") != doctor.normalize_sql("WHERE (NOT shadow)")


def test_case_2a_adopting_a_head_database_leaves_the_manifest_unchanged(head_db: str) -> None:
    with connect(head_db) as conn:
        before = doctor.build_manifest(conn)
        functions_before = conn.execute(
            "SELECT oid::regprocedure::text, xmin::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        ).fetchall()
    pg.run(head_db, "DROP TABLE public.capacity_alembic_version; DROP TABLE public.capacity_schema_ledger;")
    migrate.upgrade(head_db, "head")
    with connect(head_db) as conn:
        after = doctor.build_manifest(conn)
        functions_after = conn.execute(
            "SELECT oid::regprocedure::text, xmin::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        ).fetchall()
    assert after == before
    # Definitions equal → skipped: no function row was rewritten (its xmin would change).
    assert sorted(functions_after) == sorted(functions_before)
    assert pg.run(head_db, "SELECT action FROM public.capacity_schema_ledger WHERE object_kind = 'mode'") == [
        ("adopted",)
    ]
