"""Request ids, JSON logs without secrets, Prometheus metrics (multi-worker aware), response compression.

``setup.install_observability(app, settings, registry)`` is the one call ``create_app`` makes; the CLI
uses ``logging.log_config`` for uvicorn and ``metrics.prepare_multiprocess_dir`` before workers start;
the auto-assign route records its runs with ``metrics.observe_assign_run``. This package's ``__init__``
imports nothing: ``prometheus_client`` must not be imported before ``serve`` has set
``PROMETHEUS_MULTIPROC_DIR``.
"""
