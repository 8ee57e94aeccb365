"""The installed ``explgraph`` console script, run as a user runs it: a subprocess.

Tests through ``CliRunner`` or ``main()`` in-process never meet the entry point's own error path
(that is how usage errors once became 45-line tracebacks with a green suite). Here every case
runs the script next to this interpreter with the checkout first on ``PYTHONPATH`` and checks
the exit code, that the message is one line, and that no traceback is printed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import console_script
from tests.helpers.signals import default_sigint

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 300  # gives up on a mine that never reaches learning


def script_env(home: Path) -> dict[str, str]:
    """The environment of a user with this checkout first on the path and a private home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXPLGRAPH_", "NEO4J_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env["HOME"] = str(home)
    env["XDG_DATA_HOME"] = str(home / ".local" / "share")
    env["XDG_CACHE_HOME"] = str(home / ".cache")
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_script(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``explgraph ARGS`` to the end, output captured."""
    return subprocess.run(
        [str(console_script()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=script_env(home),
        cwd=home,
    )


def assert_no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    """Nothing in either stream looks like a Python traceback."""
    both = done.stdout + done.stderr
    assert "Traceback" not in both, both
    assert 'File "' not in both, both


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private home folder with a small synthetic model ``m1`` in ``store/``."""
    from tests.helpers.stores import write_small_model

    folder = tmp_path_factory.mktemp("console-home")
    write_small_model(str(folder / "store"))
    (folder / "empty").mkdir()
    (folder / "empty.json").write_text("{}")
    return folder


# --- usage mistakes: click's usage line and one line of what is wrong, exit 2 -------------------

USAGE_MISTAKES = [
    (["modles"], "No such command 'modles'"),
    (["mine"], "Missing argument"),
    (["models", "--bogus"], "No such option: --bogus"),
    (["query", "--format", "xml"], "'xml' is not one of"),
    (["query", "RETURN 1 AS x", "--param"], "requires an argument"),
    # found by the command itself, not by click: the same code (issue 23)
    (["query"], "Invalid value for 'CYPHER': missing"),
    (["evaluate", "parts", "m1", "--part", "head", "--annotations", "a.json",
      "--shots", "s.json", "--draws", "2"], "either --shots or --draws"),
    (["train", "--layer", "block4_conv2"], "add --interpretable"),
    (["train", "--finetune", "mobilenet_v2", "--warm-start", "toy.pt"], "--warm-start is for"),
    (["compare", "m1", "m1", "--layers-a", ","], "at least one layer name"),
    (["explain", "m1", "x.png", "--box", "1,2,3"], "write it as x0,y0,x1,y1"),
    (["explain", "m1", "x.png", "--box", "0,0,9,9", "--annotations", "a.json"],
     "either --box or --annotations"),
    (["serve", "--host", " "], "--host is empty"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "needle"), USAGE_MISTAKES, ids=lambda v: str(v))
def test_usage_mistakes_exit_2_with_the_usage_line(
    home: Path, args: list[str], needle: str
) -> None:
    done = run_script(home, *args)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) <= 4  # usage, hint, blank, error
    assert_no_traceback(done)


def test_bare_explgraph_prints_help_and_exits_2(home: Path) -> None:
    done = run_script(home)
    assert done.returncode == 2
    assert "Usage: explgraph" in done.stdout + done.stderr and "query" in done.stdout + done.stderr
    assert_no_traceback(done)


def test_version(home: Path) -> None:
    from explgraph import __version__

    done = run_script(home, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"explgraph {__version__}"


def test_global_options_after_the_subcommand(home: Path) -> None:
    before = run_script(home, "--store", str(home / "store"), "models", "--format", "csv")
    after = run_script(home, "models", "--format", "csv", "--store", str(home / "store"), "-q")
    assert before.returncode == after.returncode == 0, after.stderr
    assert before.stdout == after.stdout and before.stdout.startswith("model_id,")
    nested = run_script(home, "store", "info", f"--store={home / 'store'}")
    assert nested.returncode == 0 and "models: 1" in nested.stdout


def test_help_has_no_type_label_on_flags(home: Path) -> None:
    done = run_script(home, "--help")
    assert done.returncode == 0
    quiet = next(line for line in done.stdout.splitlines() if "--quiet" in line)
    assert "<bool>" not in quiet and "--debug" in done.stdout and "--version" in done.stdout


# --- domain errors: one line "error: ...", exit 1, one per command ------------------------------


def domain_errors(home: Path) -> dict[str, list[str]]:
    """A mistake a user can make with each command, that the command itself must refuse."""
    store, empty, bad = str(home / "store"), str(home / "empty"), str(home / "empty.json")
    missing = str(home / "missing.png")
    with_store = ["--store", store]
    return {
        "models": ["--store", str(home / "no-store"), "models"],
        "query": [*with_store, "query", "MATCH (n RETURN n"],
        "query-write": [*with_store, "query", "CREATE (n:X)"],
        "delete": [*with_store, "delete", "m9", "--yes"],
        "store info": ["--store", str(home / "no-store"), "store", "info"],
        "show": [*with_store, "show", "m9"],
        "export": [*with_store, "export", "m9"],
        "compare": [*with_store, "compare", "m9", "m8"],
        "explain": [*with_store, "explain", "m1", missing],
        "diagnose": [*with_store, "diagnose", "m9", "--annotations", bad],
        "aog build": [*with_store, "aog", "build", "m1", "--part", "head", "--shots", bad + "x"],
        "aog show": [*with_store, "aog", "show", "m1", "--part", "head"],
        "locate": [*with_store, "locate", "m1", "--part", "head", missing],
        "evaluate stability": [*with_store, "evaluate", "stability", "m9", "--annotations", bad],
        "evaluate parts": [
            *with_store,
            "evaluate",
            "parts",
            "m9",
            "--part",
            "x",
            "--annotations",
            bad,
        ],
        "evaluate parts --appearance-map": [
            *with_store,
            "evaluate",
            "parts",
            "m1",
            "--part",
            "head",
            "--annotations",
            bad,
            "--appearance-map",
            "sum",
        ],
        "dataset info": ["dataset", "info", empty],
        "dataset synth": ["dataset", "synth", bad, "--n", "8"],
        "train": ["train", "--data", empty, "--epochs", "1"],
        "mine": [*with_store, "mine", str(home / "missing.pt"), "--images", empty],
        "demo": [*with_store, "demo", "--n", "8", "--label", "unicorn", "--cache-dir", empty],
    }


DOMAIN_COMMANDS = [
    "models", "query", "query-write", "delete", "store info", "show", "export", "compare",
    "explain", "diagnose", "aog build", "aog show", "locate", "evaluate stability",
    "evaluate parts", "evaluate parts --appearance-map", "dataset info", "dataset synth",
    "train", "mine", "demo",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("command", DOMAIN_COMMANDS)
def test_domain_errors_are_one_line_exit_1(home: Path, command: str) -> None:
    done = run_script(home, "--quiet", *domain_errors(home)[command])
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert_no_traceback(done)


# an unknown name in a canned query: one line naming a few that exist, never "(no rows)"
UNKNOWN_NAMES = [
    (["image-patterns", "-p", "model=m1", "-p", "image=nope.png"],
     "no image 'nope.png' in this store (by image id or stored path)", "synthetic/000000.png",
     'explgraph query "MATCH (i:Image)'),
    (["image-patterns", "-p", "model=m9", "-p", "image=synthetic/000000.png"],
     "no model 'm9' in this store", "e.g. m1", "explgraph models"),
    (["strongest-relations", "-p", "model=m1", "-p", "layer=conv9"],
     "no layer 'conv9' in model 'm1'", "e.g. low, high", "explgraph show m1"),
    (["path-to-top", "-p", "pattern=m1/low/f0/p99"],
     "no pattern 'm1/low/f0/p99' in this store", "m1/low/f0/p0",
     "explgraph query filter-patterns -p model=m1"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "says", "example", "listing"), UNKNOWN_NAMES, ids=str)
def test_canned_query_with_an_unknown_name_is_one_line_exit_1(
    home: Path, args: list[str], says: str, example: str, listing: str
) -> None:
    done = run_script(home, "--quiet", "--store", str(home / "store"), "query", *args)
    assert done.returncode == 1, (done.stdout, done.stderr)
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {says}; ")
    assert example in line and f"list them with: {listing}" in line
    assert done.stdout == ""


def test_canned_query_whose_names_exist_still_answers(home: Path) -> None:
    done = run_script(
        home, "--quiet", "--store", str(home / "store"), "query", "image-patterns",
        "-p", "model=m1", "-p", "image=synthetic/000000.png", "-f", "csv",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("layer,pattern_id,rank") and "m1/" in done.stdout


def test_unexpected_error_names_it_and_debug_shows_the_traceback(home: Path) -> None:
    # a file where the synthetic dataset's folder should go: not (yet) a checked input
    args = ["dataset", "synth", str(home / "empty.json" / "sub"), "--n", "8", "--quiet"]
    plain = run_script(home, *args)
    assert plain.returncode == 1
    [line] = plain.stderr.strip().splitlines()
    assert line.startswith("error: ")
    if "unexpected" in line:  # once an input check catches it, it is a domain error instead
        assert "run with --debug for the traceback" in line
        debug = run_script(home, *args, "--debug")
        assert debug.returncode == 1 and "Traceback" in debug.stderr


# --- Ctrl-C ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 synthetic 128-px images, 24 of them birds."""
    from miner.data.synthetic import write_synthetic

    data = tmp_path_factory.mktemp("console-synth") / "synth"
    write_synthetic(data, 96, size=128, seed=0)
    return data


@contextlib.contextmanager
def started(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process writing to ``log``, killed at the end if still alive."""
    with log.open("w") as out:
        # SIGINT at its default even when the test run itself ignores it (a background job)
        child = subprocess.Popen(
            command, stdout=out, stderr=out, env=env, text=True, preexec_fn=default_sigint
        )
        try:
            yield child
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


@pytest.mark.slow
def test_sigint_during_learning_exits_130_with_one_line(home: Path, synth: Path) -> None:
    import miner

    toy = Path(miner.__file__).resolve().parent / "assets" / "toy_vgg.pt"
    cache = home / "sigint-cache"
    store = home / "sigint-store"
    command = [
        str(console_script()), "mine", str(toy), "--images", str(synth), "--label", "bird",
        "--split", "", "--iterations", "5", "--device", "cpu", "--cache-dir", str(cache),
        "--store", str(store), "--quiet",
    ]  # fmt: skip
    log = home / "sigint.log"
    with started(command, script_env(home), log) as child:
        deadline = time.monotonic() + WAIT_S
        # the top layer's checkpoint exists: learning is under way on the layers below it
        while not list((cache / "graphs").glob("*/layer3.pt")):
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.05)
            if child.returncode is not None:
                pytest.fail(f"mine ended (exit {child.returncode}) first:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"learning did not start within {WAIT_S} s")
        child.send_signal(signal.SIGINT)
        code = child.wait(timeout=120)
    output = log.read_text()
    assert code == 130, output
    assert output.strip().splitlines() == ["interrupted"], output
    assert "Traceback" not in output
