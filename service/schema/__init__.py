"""The database schema this service owns: guarded DDL builders, pre-flight checks and the drift doctor."""
