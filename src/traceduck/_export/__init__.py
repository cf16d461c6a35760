"""Exporters: the DuckDB SpanExporter (assemble traces, write batches) and OTLP wiring."""
