"""The local cloud: the real template, state machine and handlers, end to end on one machine.

The layer's package is importable as Lambda mounts it (/opt/python): its folder goes on sys.path.
"""

import sys
from pathlib import Path

_LAYER = str(Path(__file__).resolve().parent.parent / "layer")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
