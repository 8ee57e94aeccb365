"""Children that tests interrupt must start with Ctrl-C at its default.

A process started in the background of a non-interactive shell (``cmd &``, as CI scripts and
``nohup`` runs do) inherits SIGINT *ignored*, and Python then installs no KeyboardInterrupt
handler: a test that sends SIGINT would see the child finish instead. Pass
:func:`default_sigint` as ``preexec_fn`` so the child gets the disposition a terminal gives.
"""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn``: SIGINT back to its default disposition in the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
