"""What the tests share: databases, app harnesses, token minting, the running stack.

Test modules import from here, never from one another.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root."""
