"""The ``traceduck`` command group; each command lives in the module named for what it does.

Other parts register their commands here with one ``main.add_command(...)`` line each.
"""

from __future__ import annotations

import click

from ._collector import collector
from ._common import CONTEXT
from ._compare import compare
from ._delete import delete, prune
from ._demo import demo
from ._query import search, show, sql, stats
from ._run import run
from ._tags import metadata, tag
from ._transfer import export, import_
from ._ui import ui


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="traceduck")
def main() -> None:
    """Trace Python apps into DuckDB and ask questions of the traces.

    \b
    Example:
      traceduck demo
      traceduck search "status = 'ERROR' AND tags.env = 'prod'"
    """


main.add_command(search)
main.add_command(show)
main.add_command(sql)
main.add_command(stats)
main.add_command(tag)
main.add_command(metadata)
main.add_command(export)
main.add_command(import_)
main.add_command(demo)
main.add_command(ui)
main.add_command(collector)
main.add_command(compare)
main.add_command(run)
main.add_command(delete)
main.add_command(prune)
