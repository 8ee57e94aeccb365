"""Smallest deterministic form of the bug: a committed transaction that mixes COPY with other
writes comes back from a crash with the other writes applied and the COPY lost.

    python minimal.py [FOLDER]

The store holds 3 'old' Items and a Meta node (done = false). Each case runs a writer in a
child process, kills it with SIGKILL, reopens the store and shows what is there:

1. ``auto_checkpoint=False``: BEGIN; DELETE the 3 old Items; COPY 5 new Items; COMMIT
   (returns); SIGKILL. The crash lands after COMMIT returned and before any checkpoint.
2. The same with COPY only: the acknowledged COPY is gone.
3. The same with COPY, then ``SET meta.done = true``: the flag survives, the rows it vouches
   for do not.
4. Default settings; the forced post-commit checkpoint fails (a directory sits where
   ``graph.lbug.shadow`` goes, standing in for a full disk): COMMIT raises "Transaction committed
   successfully, but the post-commit checkpoint failed. The committed data is durable and will
   be recovered on restart"; SIGKILL; the directory is removed; reopen.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import ladybug
import pyarrow as pa


def rows(conn: ladybug.Connection, cypher: str) -> list:
    """The rows of one statement."""
    result = conn.execute(cypher)
    assert not isinstance(result, list)
    return result.get_all()


def state(conn: ladybug.Connection) -> str:
    """The Items by version and the Meta flag."""
    items = rows(conn, "MATCH (i:Item) RETURN i.version, count(*) ORDER BY i.version")
    done = rows(conn, "MATCH (m:Meta) RETURN m.done")[0][0]
    return f"items {items}, meta.done {done}"


def writer(path: str, case: str) -> None:
    """The child: one transaction of ``case``, then SIGKILL to itself."""
    failing_checkpoint = case == "failing-checkpoint"
    db = ladybug.Database(path, auto_checkpoint=failing_checkpoint)
    conn = ladybug.Connection(db)
    conn.execute("BEGIN TRANSACTION")
    if case in ("delete+copy", "failing-checkpoint"):
        conn.execute("MATCH (i:Item) DELETE i")
    new = pa.table({"id": ["n1", "n2", "n3", "n4", "n5"], "version": ["new"] * 5})
    conn.execute("COPY Item FROM $t", {"t": new})
    if case == "copy+set":
        conn.execute("MATCH (m:Meta) SET m.done = true")
    if failing_checkpoint:
        os.mkdir(path + ".shadow")
    try:
        conn.execute("COMMIT")
    except RuntimeError as error:
        print(f"  COMMIT raised: {error}", flush=True)
    wal = path + ".wal"
    size = os.path.getsize(wal) if os.path.exists(wal) else 0
    print(f"  after COMMIT, in the writer: {state(conn)}; graph.lbug.wal is {size} B", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


CASES = {
    "delete+copy": (
        "auto_checkpoint=False: BEGIN; DELETE the 3 old; COPY 5 new; COMMIT",
        "items [['new', 5]]",
    ),
    "copy": (
        "auto_checkpoint=False: BEGIN; COPY 5 new; COMMIT",
        "items [['new', 5], ['old', 3]]",
    ),
    "copy+set": (
        "auto_checkpoint=False: BEGIN; COPY 5 new; SET meta.done = true; COMMIT",
        "items [['new', 5], ['old', 3]], meta.done True",
    ),
    "failing-checkpoint": (
        "default settings, post-commit checkpoint fails: BEGIN; DELETE the 3 old; COPY 5 new; "
        "COMMIT",
        "items [['new', 5]] (the engine said: committed, durable)",
    ),
}


def run(folder: str, case: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    path = os.path.join(folder, "graph.lbug")
    db = ladybug.Database(path)
    conn = ladybug.Connection(db)
    conn.execute("CREATE NODE TABLE Item(id STRING, version STRING, PRIMARY KEY (id))")
    conn.execute("CREATE NODE TABLE Meta(id STRING, done BOOLEAN, PRIMARY KEY (id))")
    items = pa.table({"id": ["o1", "o2", "o3"], "version": ["old"] * 3})
    conn.execute("COPY Item FROM $t", {"t": items})
    conn.execute("CREATE (:Meta {id: 'meta', done: false})")
    conn.close()
    db.close()  # a clean close: checkpointed, no WAL left
    what, expected = CASES[case]
    print(f"\n{case}: {what}; SIGKILL")
    child = subprocess.run([sys.executable, os.path.abspath(__file__), "--writer", path, case])
    print(f"  writer exit status {child.returncode} (-9: SIGKILL)")
    if case == "failing-checkpoint":
        os.rmdir(path + ".shadow")
    db = ladybug.Database(path)
    conn = ladybug.Connection(db)
    print(f"  after reopening: {state(conn)}")
    print(f"  a committed transaction gives: {expected}")
    conn.close()
    db.close()


def main() -> None:
    if sys.argv[1:2] == ["--writer"]:
        return writer(sys.argv[2], sys.argv[3])
    folder = sys.argv[1] if len(sys.argv) > 1 else "/tmp/ladybug-minimal"
    print(f"ladybug {ladybug.__version__}")
    for case in CASES:
        run(folder, case)


if __name__ == "__main__":
    main()
