"""The experiment new traces belong to (MLflow's grouping), chosen once per process.

The choice, latest first: ``td.set_experiment(name)`` or ``configure(experiment=name)``, else
``$TRACEDUCK_EXPERIMENT``, else ``$MLFLOW_EXPERIMENT_NAME``, else "Default". A trace carries its
experiment's name as the attribute ``traceduck.experiment`` on its local root, set when the root
starts (so a later ``set_experiment`` does not move traces already running, and the name travels
over OTLP to a collector); the store turns names into ids ("0" is Default, then "1", "2", ... in
order of creation, as in MLflow's SQL stores). A root without the attribute is in Default.
"""

from __future__ import annotations

import os
import unicodedata

from ._constants import (
    DEFAULT_EXPERIMENT,
    ENV_EXPERIMENT,
    ENV_MLFLOW_EXPERIMENT,
    MAX_EXPERIMENT_NAME_LEN,
)
from .errors import ConfigError

__all__ = ["STATE", "check_name", "choose", "current", "forget", "from_environment"]


class _State:
    """``chosen``: the name set in code (None: not set). ``stamp``: the name stamped on local
    roots, None for Default (no attribute: the common case costs one read per root).
    ``at_export``: stamp roots at export instead (the zero-code exporter, where traceduck's own
    span processor is not there to stamp them at start)."""

    chosen: str | None = None
    stamp: str | None = None
    at_export = False


STATE = _State()


def check_name(name: object) -> str:
    """A valid experiment name, stripped; ``ConfigError`` otherwise."""
    if not isinstance(name, str):
        raise ConfigError(f"an experiment name is a string, not {type(name).__name__}")
    text = name.strip()
    if not text:
        raise ConfigError("an experiment name cannot be empty")
    if len(text) > MAX_EXPERIMENT_NAME_LEN:
        raise ConfigError(f"an experiment name has at most {MAX_EXPERIMENT_NAME_LEN} characters")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise ConfigError(f"an experiment name cannot hold control characters: {text!r}")
    return text


def from_environment() -> str | None:
    """``$TRACEDUCK_EXPERIMENT``, else ``$MLFLOW_EXPERIMENT_NAME`` (None if neither is set)."""
    for variable in (ENV_EXPERIMENT, ENV_MLFLOW_EXPERIMENT):
        value = os.environ.get(variable, "").strip()
        if value:
            return value
    return None


def current() -> str:
    """The experiment new traces go to."""
    if STATE.chosen is not None:
        return STATE.chosen
    try:
        return check_name(from_environment() or DEFAULT_EXPERIMENT)
    except ConfigError:
        return DEFAULT_EXPERIMENT  # a bad variable never breaks tracing


def is_chosen() -> bool:
    """Whether an experiment was chosen (in code or the environment) rather than defaulted."""
    return STATE.chosen is not None or from_environment() is not None


def choose(name: str | None) -> None:
    """Choose the experiment of the traces that start from now on (None: keep the choice made
    in code, if any, else read the environment again)."""
    if name is not None:
        STATE.chosen = check_name(name)
    name = current()
    STATE.stamp = None if name == DEFAULT_EXPERIMENT else name


def forget() -> None:
    """Forget the choice made in code: back to the environment's experiment, or Default."""
    STATE.chosen = None
    choose(None)
