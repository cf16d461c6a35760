"""The experiment calls every store has (MLflow's names), over each engine's own methods."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from .. import _experiment
from .._constants import DEFAULT_EXPERIMENT, DEFAULT_EXPERIMENT_ID
from ..errors import ConfigError
from ..model import Experiment

__all__ = ["ExperimentCalls", "experiment_exists", "experiment_scope", "split_default"]


class ExperimentCalls(ABC):
    """Create, get and list experiments; a base of ``TraceStore``."""

    def create_experiment(self, name: str) -> str:
        """Create an experiment; returns its id ("1", "2", ... in order of creation).
        ``ConfigError`` if one of that name exists (``get_or_create_experiment`` does not)."""
        name = _experiment.check_name(name)
        self._check_writable()
        return self._create_experiment(name)

    @abstractmethod
    def _check_writable(self) -> None:
        """StorageError if the store was opened read-only."""

    @abstractmethod
    def _create_experiment(self, name: str) -> str:
        """A new experiment's id; ``ConfigError`` (``experiment_exists``) if the name is taken."""

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment of that name, created if the store has none."""
        name = _experiment.check_name(name)
        found = self.get_experiment_by_name(name)
        if found is None:
            self._check_writable()
            self._ensure_experiment(name)
            found = self.get_experiment_by_name(name)
        assert found is not None
        return found

    @abstractmethod
    def _ensure_experiment(self, name: str) -> None:
        """The experiment of that name exists afterwards (created if need be)."""

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with that id; ``ConfigError`` if there is none."""
        found = self._experiment_by_id(str(experiment_id))
        if found is None:
            raise ConfigError(f"no experiment with id {experiment_id!r}")
        return found

    @abstractmethod
    def _experiment_by_id(self, experiment_id: str) -> Experiment | None: ...

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment of that name, None if there is none (as in MLflow)."""

    @abstractmethod
    def search_experiments(self) -> list[Experiment]:
        """Every experiment, Default ("0") first."""


def split_default(names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """What an engine's ``ensure(names)`` starts from: (name -> id of the Default experiment if
    named, which every store has, the other names once each, in the order given)."""
    wanted = list(dict.fromkeys(names))
    ids = {DEFAULT_EXPERIMENT: DEFAULT_EXPERIMENT_ID} if DEFAULT_EXPERIMENT in wanted else {}
    return ids, [n for n in wanted if n != DEFAULT_EXPERIMENT]


def experiment_exists(name: str) -> ConfigError:
    return ConfigError(f"experiment {name!r} exists already")


def experiment_scope(
    experiment_ids: Iterable[str] | str | None, locations: Iterable[str] | str | None
) -> list[str] | None:
    """The experiment ids a search keeps (None: every trace); MLflow's two spellings."""
    if experiment_ids is None and locations is None:
        return None
    ids: list[str] = []
    for given, what in ((experiment_ids, "experiment_ids"), (locations, "locations")):
        if given is None:
            continue
        items = [given] if isinstance(given, (str, int)) else list(given)
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise ConfigError(f"{what} holds experiment ids (strings), not {item!r}")
            ids.append(str(item).strip())
    return ids
