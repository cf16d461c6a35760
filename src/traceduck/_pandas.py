"""pandas, imported where a DataFrame is asked for, with one message when it cannot be.

pandas is a dependency (MLflow's ``search_traces`` returns DataFrames, and MLflow users expect
them); it is imported only when a DataFrame is made, so tracing and the CLI never pay for it.
"""

from __future__ import annotations

from typing import Any

from .errors import TraceduckError


def require_pandas(what: str) -> Any:
    """The pandas module, or a ``TraceduckError`` naming ``what`` wanted it and the fix."""
    try:
        import pandas
    except ImportError as exc:
        raise TraceduckError(
            f"{what} returns a pandas DataFrame, but pandas cannot be imported here ({exc}); "
            "pandas is a dependency of traceduck: pip install pandas"
        ) from None
    return pandas
