"""``python -m aegis_tornado``: the same entry point as the ``aegis-mcp`` console script."""

import sys

from .cli import main

sys.exit(main())
