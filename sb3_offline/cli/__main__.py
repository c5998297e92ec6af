"""``python -m sb3_offline.cli``: the ``sb3-offline`` command."""

import sys

from sb3_offline.cli import main

sys.exit(main())
