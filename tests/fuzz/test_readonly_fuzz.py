"""The read-only policy against a fuzzer, through ``explgraph query`` on every engine.

Hypothesis builds statements from the read-only grammar and hides write, file and schema clauses
in them (:mod:`tests.fuzz.grammar`); each runs through the CLI against a store holding a small
model, with a canary file whose secret no output may show and a folder nothing may be written
to. Whatever the CLI answers, no process opened the canary (inotify) and the store is
unchanged: the same bytes on LadybugDB, the same labels, relationship types, indexes,
constraints and contents on a Bolt server (:mod:`tests.helpers.store_observer`); on Bolt every
statement the command sends runs in a READ transaction. Each run is deterministic: a
derandomised set of examples per engine, and a ``slow`` variant with more examples from a fixed
seed (``FUZZ_EXAMPLES``, default 400, and ``FUZZ_SEED``, default 22, to search further by hand).

Without a store, the policy alone: every statement of the read grammar is accepted, and every
clause joined to a read prefix by plain whitespace or a newline-ended comment is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from graphstore import GraphRecords
from graphstore.statements import classify
from tests.fuzz.corpus import fill
from tests.fuzz.grammar import PAYLOADS, PREFIXES, hostile_statements, read_statements
from tests.helpers.cli import run_cli
from tests.helpers.store_observer import FileWatch, bolt_statements, canary, observe
from tests.helpers.stores import open_store

Build = Callable[..., GraphRecords]

CI_EXAMPLES = 200
_STORE_RUNS = {
    "deadline": None,
    "database": None,  # nothing written next to the sources
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


class _Target:
    """A store with a model, a canary file and an output folder, and what they look like."""

    def __init__(self, spec: str, folder: Path, tiny_records: Build) -> None:
        with open_store(spec) as writer:
            writer.write_model(tiny_records("m1"))
        self.spec = spec
        self.canary, self.secret = canary(folder)
        self.out = folder / "out"
        self.out.mkdir()
        self.view = observe(spec)
        self.watch = FileWatch(self.canary)
        self.ran = 0

    def check(self, template: str) -> None:
        """Run one statement through the CLI; nothing may change, be written or be shown."""
        statement = fill(template, str(self.canary), str(self.out))
        with bolt_statements() as sent:
            result = run_cli("query", statement, store=self.spec, expect=None)
        assert self.secret not in result.output, statement
        assert not self.watch.touched(), f"the canary was opened: {statement!r}"
        assert result.exit_code in (0, 1), result.output  # 1: one explgraph error line
        if result.exit_code == 1:
            assert result.error_line  # one line, an explgraph error (not a crash)
        else:
            self.ran += 1
        assert list(self.out.iterdir()) == [], statement
        assert observe(self.spec) == self.view, statement
        if "://" in self.spec:  # Bolt: nothing but READ transactions, the statement among them
            assert {mode for mode, _ in sent} <= {"READ"}, (statement, sent)
            assert result.exit_code == 1 or statement in {text for _, text in sent}, statement


def _fuzz(target: _Target, examples: int, *, seed_value: int | None = None) -> None:
    """``examples`` statements through ``target``: derandomised, or drawn from ``seed_value``."""

    @settings(max_examples=examples, derandomize=seed_value is None, **_STORE_RUNS)
    @given(st.one_of(hostile_statements(), read_statements()))
    def run(template: str) -> None:
        target.check(template)

    try:
        (run if seed_value is None else seed(seed_value)(run))()
    finally:
        target.watch.close()


def test_the_cli_lets_no_hostile_statement_through(
    store_spec: str, tiny_records: Build, tmp_path: Path
) -> None:
    target = _Target(store_spec, tmp_path, tiny_records)
    _fuzz(target, CI_EXAMPLES)
    assert target.ran > 0  # the read grammar really ran: the check is not refusing everything


@pytest.mark.slow
def test_the_cli_lets_no_hostile_statement_through_at_length(
    store_spec: str, tiny_records: Build, tmp_path: Path
) -> None:
    target = _Target(store_spec, tmp_path, tiny_records)
    examples = int(os.environ.get("FUZZ_EXAMPLES", "400"))
    _fuzz(target, examples, seed_value=int(os.environ.get("FUZZ_SEED", "22")))
    assert target.ran > 0


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(read_statements())
def test_the_read_grammar_is_accepted(statement: str) -> None:
    found = classify(statement)
    assert found.read_only, (statement, found.refused, found.problems)


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(
    st.sampled_from(PREFIXES),
    st.sampled_from((" ", "\n", "\t", "\r\n", "\u00a0", " //c\n", " /*c*/ ")),
    st.sampled_from(PAYLOADS),
    st.data(),
)
def test_a_clause_after_a_read_prefix_is_refused(
    prefix: str, joiner: str, payload: tuple[str, str], data: st.DataObject
) -> None:
    clause = payload[0]
    case = data.draw(st.sampled_from((str.upper, str.lower, str.title, str)))
    statement = prefix + joiner + case(fill(clause, "/tmp/canary.csv", "/tmp/out"))
    assert not classify(statement).read_only, statement
