"""``python -m sb3_offline.zoo train|enjoy [rl-zoo3 options]``."""

import sys

from sb3_offline.zoo import main

sys.exit(main())
