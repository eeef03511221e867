"""Schema doctor: compare the live database with the shape this version of the service needs (docs/schema.md §6.3).

Read-only (the checks run in a READ ONLY transaction). Three parts:

- :func:`inspect_live` — a normalised catalog snapshot of schema ``public`` plus the cluster facts the
  service depends on (roles, btree_gist, version table, kill-switch settings);
- :func:`build_manifest` — the snapshot of a *greenfield head* database, restricted to what the service
  owns. It is committed as ``service/schema/manifest.json``; regenerate it after changing a revision with

      uv run python -m service.schema.doctor --write-manifest postgresql://postgres@127.0.0.1:5432/<db at head>
      uv run python -m service.schema.doctor --write-manifest --fresh postgresql://postgres@127.0.0.1:5432/postgres

  (the second form builds a scratch database at head from this checkout and drops it afterwards;
  ``tests/migrations/test_doctor.py::test_manifest_is_fresh`` fails while the committed file is stale);
- :func:`diagnose` — every finding of docs/schema.md §6.3, and :func:`readiness_findings` — the cheap subset ``/readyz`` runs.

Normalisation (so the manifest built on PostgreSQL 15 equals the one built on 18 and an adopted database
is compared by shape, not by spelling): PG 18's catalogued NOT NULL constraints (contype ``n``) are
ignored; definitions are lower-cased, ``public.`` qualifiers, double quotes, ``::type`` casts, NOT VALID
and deferrability clauses are dropped (the latter two are compared as flags), whitespace is collapsed.

**Runtime role (decision).** docs/schema.md §4.2 rule 1 is about the role the *service* connects as. ``diagnose`` checks
the role named by ``runtime_role``; without it, ``current_user``. Operators usually run
``capacity-service doctor`` as the migration user, which is often a superuser or the owner's member, so:
when the role was *not* named explicitly, a superuser / owner / BYPASSRLS finding on it is reported as
``info`` (``runtime_role_bypasses_rls``, hint: pass ``--runtime-role``); when it was named, it is an
``error``. :func:`readiness_findings` runs on the service's own connection, so there it is always an
``error`` (acceptance case 32).

**Severities docs/schema.md §6.3 leaves open (decisions).** Errors: a missing/mismatched policy or RLS switched off on
an owned table, a permissive ``USING (true)`` service-role policy on an *owned* table (OR-combined, it
voids the tenant policies; on co-owned tables it is the docs/schema.md §6.3 warning), missing EXECUTE / service_role
table grants, constraint shape drift of PK/UNIQUE/EXCLUDE/FK. Warnings: missing plain index, trigger
missing or different, CHECK shape drift, grants to anon, EXECUTE for PUBLIC on a SECURITY DEFINER
function. Info: default-expression differences, a co-owned column stricter (NOT NULL) than our copy,
columns/constraints catalog.py exempts on adoption, an adopted updated_at trigger under another name.
While ``strategic_configs`` is not in its 0005 shape, errors on its sub-objects are lowered to warnings
(the allocator keeps serving on defaults, docs/strategic-config.md §3.5).

Modules: ``checked_objects`` (names), ``normalise``, ``live_catalog`` (:func:`inspect_live`), ``manifest``,
``strategic_probe``, ``rules`` (:func:`diagnose`), ``readiness`` (:func:`readiness_findings`), ``findings``
(:class:`Finding`, rendering, exit codes), ``cli``. This package's namespace re-exports the entry points
the app, the CLI and the tests use.
"""

from service.schema.doctor.checked_objects import PROBE_COLUMNS
from service.schema.doctor.findings import SEVERITIES, Finding, exit_code, render_json, render_text
from service.schema.doctor.live_catalog import inspect_live
from service.schema.doctor.manifest import (
    HEAD_REVISION,
    MANIFEST_PATH,
    build_manifest,
    load_manifest,
    manifest_text,
)
from service.schema.doctor.normalise import normalize_sql
from service.schema.doctor.readiness import readiness_findings
from service.schema.doctor.rules import diagnose
from service.schema.doctor.strategic_probe import strategic_config_schema_state, strategic_config_state

__all__ = [
    "HEAD_REVISION",
    "MANIFEST_PATH",
    "PROBE_COLUMNS",
    "SEVERITIES",
    "Finding",
    "build_manifest",
    "diagnose",
    "exit_code",
    "inspect_live",
    "load_manifest",
    "manifest_text",
    "normalize_sql",
    "readiness_findings",
    "render_json",
    "render_text",
    "strategic_config_schema_state",
    "strategic_config_state",
]
