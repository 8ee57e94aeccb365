"""Support for tests and benchmarks of the store; the product never needs it.

- :mod:`graphstore.testing.synthetic`: random explanatory graphs of any size (also behind
  ``explgraph store smoke``);
- :mod:`graphstore.testing.arcadedb_peer`: a throw-away ArcadeDB Bolt server on loopback;
- :mod:`graphstore.testing.catalogue`: every Cypher text the Bolt engine sends, for linting.

This is the one place below the CLI that may read the environment (the peer passes its
password to its child process that way).
"""
