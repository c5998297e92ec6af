"""gymnasium-robotics (the Fetch, AntMaze and Adroit tasks), imported and registered where sb3_offline needs it."""

from __future__ import annotations

import contextlib
import io
import sys
from types import ModuleType


def register_gymnasium_robotics() -> ModuleType:
    """
    Import ``gymnasium_robotics`` and register its envs with gymnasium (``gym.register_envs``), without the notice
    its first import prints to stderr (Farama's notification for the installed version: 1.4.2's is about the
    AdroitHand v1 rewards, tasks sb3_offline does not use). Anything else printed on import is printed as it was.

    :return: the ``gymnasium_robotics`` module
    """
    import gymnasium as gym

    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        import gymnasium_robotics
    text = printed.getvalue()
    try:
        from farama_notifications import notifications

        notice = notifications.get("gymnasium_robotics", {}).get(gymnasium_robotics.__version__)
    except ImportError:  # pragma: no cover - installed with gymnasium-robotics
        notice = None
    if notice:
        text = text.replace(f"{notice}\n", "")
    sys.stderr.write(text)
    gym.register_envs(gymnasium_robotics)
    return gymnasium_robotics
