"""Cross-cutting HTTP strictness (body rules, catch-all, Allow, fault logging), installed by
:func:`service.http.hardening.install_http_hardening`."""
