"""Smallest deterministic form of the bug: a committed DELETE + COPY transaction comes back
from a crash with the DELETE applied and the COPY lost.

    python minimal.py [FOLDER]

Three cases, each written in a child process that is then killed with SIGKILL, then reopened:

1. ``auto_checkpoint=False``: BEGIN; DELETE the 3 old rows; COPY 5 new rows; COMMIT (returns);
   SIGKILL. The crash lands after COMMIT returned and before any checkpoint, no timing involved.
2. The same without the DELETE: the acknowledged COPY is gone after the crash.
3. Default settings; the forced post-commit checkpoint fails (a directory sits where
   ``graph.lbug.shadow`` goes, standing in for a full disk); COMMIT raises "Transaction
   committed successfully, but the post-commit checkpoint failed. The committed data is durable
   and will be recovered on restart"; SIGKILL; the directory is removed; reopen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import ladybug
import pyarrow as pa

WRITER = """
import os, signal, sys
import ladybug, pyarrow as pa
path, with_delete, failing_checkpoint = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
db = ladybug.Database(path, auto_checkpoint=failing_checkpoint)
conn = ladybug.Connection(db)
conn.execute("BEGIN TRANSACTION")
if with_delete:
    conn.execute("MATCH (i:Item) DELETE i")
conn.execute("COPY Item FROM $t", {"t": pa.table({"id": ["n1", "n2", "n3", "n4", "n5"],
                                                  "version": ["new"] * 5})})
if failing_checkpoint:
    os.mkdir(path + ".shadow")
try:
    conn.execute("COMMIT")
except RuntimeError as error:
    print(f"  COMMIT raised: {error}", flush=True)
rows = conn.execute("MATCH (i:Item) RETURN i.version, count(*) ORDER BY i.version").get_all()
wal = path + ".wal"
size = os.path.getsize(wal) if os.path.exists(wal) else 0
print(f"  after COMMIT, in the writer: {rows}; {wal} is {size} B", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def run(folder: str, with_delete: bool, failing_checkpoint: bool = False) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    path = os.path.join(folder, "graph.lbug")
    db = ladybug.Database(path)
    conn = ladybug.Connection(db)
    conn.execute("CREATE NODE TABLE Item(id STRING, version STRING, PRIMARY KEY (id))")
    conn.execute(
        "COPY Item FROM $t", {"t": pa.table({"id": ["o1", "o2", "o3"], "version": ["old"] * 3})}
    )
    conn.close()
    db.close()  # clean close: checkpointed, no WAL left
    what = "DELETE all 3; COPY 5 new" if with_delete else "COPY 5 new (no DELETE)"
    how = (
        "default settings, the post-commit checkpoint fails"
        if failing_checkpoint
        else ("auto_checkpoint=False")
    )
    print(f"\nstore: 3 'old' items; writer ({how}): BEGIN; {what}; COMMIT; then SIGKILL")
    flags = ["1" if with_delete else "0", "1" if failing_checkpoint else "0"]
    child = subprocess.run([sys.executable, "-c", WRITER, path, *flags])
    print(f"  writer exit status {child.returncode} (-9 = SIGKILL)")
    if failing_checkpoint:
        os.rmdir(path + ".shadow")
    db = ladybug.Database(path)
    conn = ladybug.Connection(db)
    rows = conn.execute("MATCH (i:Item) RETURN i.version, count(*) ORDER BY i.version").get_all()
    expected = "[['new', 5]] or [['old', 3]]" if with_delete else "[['new', 5], ['old', 3]]"
    print(f"  after reopening: {rows}  (a committed transaction should give {expected})")
    conn.close()
    db.close()


def main() -> None:
    folder = sys.argv[1] if len(sys.argv) > 1 else "/tmp/ladybug-minimal"
    print(f"ladybug {ladybug.__version__}")
    run(folder, with_delete=True)
    run(folder, with_delete=False)
    run(folder, with_delete=True, failing_checkpoint=True)


if __name__ == "__main__":
    main()
