"""Names shared by tracing, export, storage and query: attribute keys, env vars, limits."""

from __future__ import annotations

# Span attributes traceduck writes. Tags and metadata travel on the local root span so that any
# OpenTelemetry backend sees them; values OTel cannot carry travel as JSON text and their attribute
# keys are listed in JSON_KEYS_ATTR.
ATTR_PREFIX = "traceduck."
SPAN_TYPE_ATTR = "traceduck.span_type"
INPUTS_ATTR = "traceduck.inputs"
OUTPUTS_ATTR = "traceduck.outputs"
TAG_ATTR_PREFIX = "traceduck.tag."
METADATA_ATTR_PREFIX = "traceduck.metadata."
JSON_KEYS_ATTR = "traceduck.json_keys"
EXCLUSIVE_KEYS_ATTR = "traceduck.exclusive_keys"
EXCLUSIVE_SCOPE_ATTR_PREFIX = "traceduck.exclusive_scope."
TRACE_STATUS_ATTR = "traceduck.trace_status"
# The experiment (MLflow's grouping) a trace belongs to, by name, on its local root span.
EXPERIMENT_ATTR = "traceduck.experiment"

# Attribute keys that are stored in their own columns, not in spans.attributes.
INTERNAL_ATTRS = frozenset({SPAN_TYPE_ATTR, INPUTS_ATTR, OUTPUTS_ATTR, JSON_KEYS_ATTR})

# Environment variables.
ENV_DB = "TRACEDUCK_DB"
ENV_DISABLED = "TRACEDUCK_DISABLED"
DEFAULT_DB = "traceduck.duckdb"
ENV_EXPERIMENT = "TRACEDUCK_EXPERIMENT"
ENV_MLFLOW_EXPERIMENT = "MLFLOW_EXPERIMENT_NAME"  # MLflow's, honoured the same way

# Experiments: every trace belongs to one; this one unless another is chosen (MLflow's ids).
DEFAULT_EXPERIMENT = "Default"
DEFAULT_EXPERIMENT_ID = "0"
MAX_EXPERIMENT_NAME_LEN = 500

# Limits.
MAX_TAG_KEY_LEN = 250
MAX_TAG_VALUE_BYTES = 64 * 1024
MAX_CAPTURE_CHARS = 64 * 1024  # one captured input/output after JSON encoding
PREVIEW_CHARS = 1000  # request/response previews on the trace row
DEFAULT_QUEUE_TRACES = 10_000
DEFAULT_QUEUE_BYTES = 32 * 1024 * 1024  # what the write queue holds, estimated from its rows
DEFAULT_SPAN_TYPE = "UNKNOWN"

STATUS_OK = "OK"
STATUS_ERROR = "ERROR"
