"""The explorer: a read-only web application over a graph store (``explgraph serve``).

:func:`create_app` builds the ASGI app over one store; pages list the models, their layers,
filters and patterns (with patches cut from the mined images and a node-link view of each
pattern's neighbourhood), images and their explanations, And-Or graphs, cross-model matches,
and a read-only Cypher console.
"""

from explgraph.web.app import close_app, create_app, stop_app

__all__ = ["close_app", "create_app", "stop_app"]
