"""``python -m actors.simulator --port N --state-dir DIR``."""

import sys

from ._serve import main

sys.exit(main())
