"""The ``removalx`` command line, the top layer: it may import every other wing.

``main`` (:mod:`removalx.cli.main`) parses the arguments and dispatches: ``explain``
(:mod:`removalx.cli.explain`), the experiments' commands (:mod:`removalx.cli.experiments`)
and the user study (:mod:`removalx.cli.study`). :mod:`removalx.cli.common` holds the exit
codes, defaults, argument types and option groups they share. Importing the command line
imports no torch.
"""

# Re-exported (``import X as X``) for ``from removalx.cli import main, EXIT_OK``.
from removalx.cli.common import DEFAULT_FRAMES as DEFAULT_FRAMES
from removalx.cli.common import DEFAULT_MODEL as DEFAULT_MODEL
from removalx.cli.common import DEFAULT_RECIPE as DEFAULT_RECIPE
from removalx.cli.common import DEFAULT_SIZE as DEFAULT_SIZE
from removalx.cli.common import EXIT_INPUT as EXIT_INPUT
from removalx.cli.common import EXIT_INTERNAL as EXIT_INTERNAL
from removalx.cli.common import EXIT_OK as EXIT_OK
from removalx.cli.common import EXIT_USAGE as EXIT_USAGE
from removalx.cli.main import main as main
