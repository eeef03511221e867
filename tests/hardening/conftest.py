"""The hardening proofs reuse the API harness (tests/api/conftest.py): real app, real PostgreSQL."""

from tests.api.conftest import aw, client, world  # noqa: F401  (fixtures re-exported)
