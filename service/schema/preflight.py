"""Pre-flight checks run before any revision (``capacity-service migrate``, every online upgrade, and the
head of the offline script).

One read-only ``DO`` block collects every finding and raises once, listing them all, so an operator
sees the whole picture in one run. Message = the first finding's code; DETAIL = one finding per line
(``code: description``).
"""

from __future__ import annotations

from collections.abc import Sequence

from service.schema.ddl import do_block, lit
from service.settings import Settings

VERSION_TABLE = "capacity_alembic_version"


def _check_version_table(known: Sequence[str]) -> str:
    known_array = "ARRAY[" + ", ".join(lit(k) for k in known) + "]::text[]"
    return f"""-- unknown or multiple revisions in the version table (fixtures F1/F2)
IF to_regclass('public.{VERSION_TABLE}') IS NOT NULL THEN
    SELECT array_agg(version_num ORDER BY version_num) INTO v_versions FROM public.{VERSION_TABLE};
    IF cardinality(v_versions) > 1 OR EXISTS (SELECT 1 FROM unnest(v_versions) v WHERE v <> ALL ({known_array})) THEN
        v_findings := v_findings || format(
            'capacity_unknown_revision: unknown revision(s) in {VERSION_TABLE}: %s; known head: %s',
            array_to_string(ARRAY(SELECT v FROM unnest(v_versions) v WHERE v <> ALL ({known_array})), ', '),
            {lit(known[0] if known else '')})
            || CASE WHEN cardinality(v_versions) > 1
                    THEN format(' (multiple rows: %s)', array_to_string(v_versions, ', ')) ELSE '' END;
    END IF;
END IF;"""


# Further checks register here: each returns a plpgsql fragment that appends text items to v_findings.
CHECKS = [_check_version_table]


def preflight_sql(known_revisions: Sequence[str], settings: Settings | None = None) -> str:
    """``known_revisions``: newest first (Alembic's walk order)."""
    settings = settings or Settings()
    parts = [check(known_revisions) for check in CHECKS[:1]]
    parts += [check(settings) for check in CHECKS[1:]]
    body = "\n".join(parts) + """
IF cardinality(v_findings) > 0 THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001',
        MESSAGE = split_part(v_findings[1], ':', 1),
        DETAIL = array_to_string(v_findings, E'\\n'),
        HINT = 'nothing was changed; resolve the findings (capacity-service preflight lists them in full) and re-run';
END IF;"""
    return "-- capacity-service pre-flight (read-only)\n" + do_block(
        body, declare="    v_findings text[] := ARRAY[]::text[];\n    v_versions text[];"
    )
