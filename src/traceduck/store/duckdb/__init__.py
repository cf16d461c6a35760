"""The DuckDB store: schema and migrations, connection handling, the Arrow batch writer, readers."""
