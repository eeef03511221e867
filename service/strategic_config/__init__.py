"""Strategic config: routes → ``StrategicConfigService`` → resolution rules and repository (docs/strategic-config.md §3)."""
