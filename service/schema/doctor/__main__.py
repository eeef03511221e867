"""``python -m service.schema.doctor``."""

from service.schema.doctor.cli import main

raise SystemExit(main())
