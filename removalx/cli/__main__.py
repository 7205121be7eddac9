"""``python -m removalx.cli``: the ``removalx`` command."""

import sys

from removalx.cli.main import main

sys.exit(main())
