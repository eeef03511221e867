"""Liveness and readiness: ``/healthz``, ``/readyz`` and the readiness probe."""
