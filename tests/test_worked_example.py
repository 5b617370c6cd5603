"""Slow: the worked example's real-data path, as docs/worked-example.md writes it, on TLC files of
months no config names, fetched from a loopback server standing in for the TLC's address."""

from __future__ import annotations

import http.server
import re
import shlex
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import ROOT, run
from tests.tlc_files import WRITE_MONTHS

pytestmark = pytest.mark.slow

DOC = ROOT / "docs" / "worked-example.md"
DOC_MONTHS = "2024-01 2024-02"
MONTHS = ("2022-07", "2022-08")  # months the shipped configs never name


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def tlc_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 127.0.0.1 server for the files of a folder; the project's TLC_BASE_URL points at it."""
    root = tmp_path / "served"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_QuietHandler, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("TLC_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    yield root
    server.shutdown()


def documented(prefix: str) -> str:
    """The one command of the worked example that starts with ``prefix``, as written."""
    (line,) = [line for line in DOC.read_text().splitlines() if line.startswith(prefix)]
    return re.sub(r"\s+#.*$", "", line)


def test_the_level_2_real_data_path_trains_on_any_month(
    installed_copy: Callable[[int], Path], tlc_server: Path
) -> None:
    project = installed_copy(2)
    run(
        [str(project / ".venv" / "bin" / "python"), "-c", WRITE_MONTHS, str(tlc_server), *MONTHS],
        project,
    )
    fetch = documented('make data ARGS="--tlc yellow')
    train = documented('make train ARGS="--set data.source=data/tlc"')
    assert DOC_MONTHS in fetch

    run(shlex.split(fetch.replace(DOC_MONTHS, " ".join(MONTHS))), project)
    out = run(shlex.split(train), project).stdout

    assert sorted(p.name for p in (project / "data" / "tlc").iterdir()) == [
        f"yellow_tripdata_{month}.parquet" for month in MONTHS
    ]
    assert "registered version 1 as 'champion'" in out
    # One month alone trains as well: nothing in the configuration names a month.
    (project / "data" / "tlc" / f"yellow_tripdata_{MONTHS[0]}.parquet").unlink()
    assert "registered version 2" in run(shlex.split(train), project).stdout
