"""Schemathesis's command line, with `ast.parse` serialised across its worker threads.

CPython 3.11 keeps the AST converter's recursion depth in state shared by every thread
(python/cpython#106905): two threads parsing at once can raise `SystemError: AST constructor
recursion depth mismatch`. Hypothesis parses a lambda's source to describe each filtered
strategy, and Schemathesis runs its workers as threads, so a run with two workers met it now
and then (a Runtime Error in the coverage phase, not a finding about the API). One lock
around the parse removes the race; the parses are rare and short, the workers stay parallel.
"""

import ast
import sys
import threading
from typing import Any

from schemathesis.cli import schemathesis

_parse = ast.parse
_parsing = threading.Lock()


def _serialised_parse(*args: Any, **kwargs: Any) -> Any:
    with _parsing:
        return _parse(*args, **kwargs)


if __name__ == "__main__":
    ast.parse = _serialised_parse
    sys.exit(schemathesis())
