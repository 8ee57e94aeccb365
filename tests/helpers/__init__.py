"""Test helpers other test modules import.

- :mod:`.cli`: ``run_cli``, the ``explgraph`` command in this process through its entry point;
- :mod:`.stores`: opening stores with the CLI's credentials, the small synthetic models;
- :mod:`.mined`: the toy CNN's mined graph shared by a session (the ``mined_toy`` fixture);
- :mod:`.models`: tiny CNNs with hand-computable geometry;
- :mod:`.golden_graph`: the pinned learning and inference problem;
- :mod:`.ci`: a missing tool skips a test, and fails it in CI;
- :mod:`.signals`: children that tests interrupt start with Ctrl-C at its default.

The store fixtures (every engine) are the plugin :mod:`tests.plugins.stores`.
"""
