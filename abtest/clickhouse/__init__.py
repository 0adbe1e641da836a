"""Events in ClickHouse (``ABTEST_EVENTS_URL``): the table, the write sink, the aggregate source.

The registry (definitions, users, tokens, study progress) stays on SQLite/PostgreSQL; only the
events and their aggregation move. Nothing here imports ``chdb`` or ``clickhouse_connect`` until
a ClickHouse URL is configured, so the extra stays optional.
"""
