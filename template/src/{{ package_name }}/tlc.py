"""Real NYC TLC trip-record months, the shipped example's real source (``make data`` option).

Files are downloaded to a temporary name, checked (they read as parquet and pass the contract)
and only then take their TLC name, so an interrupted or bad download never looks like data.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from .datasets import read_file
from .problem import DataValidationError
from .quality import screen

#: The TLC's public address; TLC_BASE_URL overrides it (a mirror, or a test server).
DEFAULT_BASE_URL = "https://d37ci6vzurychx.cloudfront.net/trip-data"
TLC_DIR = Path("data/tlc")
COLOURS = ("yellow", "green")
_CHUNK = 1 << 20


def file_name(colour: str, year: int, month: int) -> str:
    """The TLC's own name of a month: ``yellow_tripdata_2024-01.parquet``."""
    if colour not in COLOURS:
        raise ValueError(f"colour must be one of {COLOURS}, got {colour!r}")
    return f"{colour}_tripdata_{year:04d}-{month:02d}.parquet"


def _progress(name: str, done: int, total: int | None, out: IO[str]) -> None:
    size = f"{done / 1e6:.1f} MB"
    share = f" {100 * done / total:5.1f}% of {total / 1e6:.1f} MB" if total else ""
    out.write(f"\r{name}: {size}{share}")
    out.flush()


def download_month(
    colour: str,
    year: int,
    month: int,
    folder: str | Path = TLC_DIR,
    base_url: str | None = None,
    timeout: float = 60.0,
    out: IO[str] | None = None,
) -> Path:
    """Fetch one month to ``folder`` under its TLC name, checked before it takes that name: a
    file that is not the contract's table is refused; its bad rows are counted, and kept in the
    file as published (every command that reads it sets them aside)."""
    out = out or sys.stderr
    name = file_name(colour, year, month)
    url = f"{(base_url or os.environ.get('TLC_BASE_URL') or DEFAULT_BASE_URL).rstrip('/')}/{name}"
    target = Path(folder) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{name}.partial.parquet")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, partial.open("wb") as sink:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            while chunk := response.read(_CHUNK):
                sink.write(chunk)
                done += len(chunk)
                _progress(name, done, total, out)
        out.write("\n")
        frame, _ = read_file(partial)
        # the contract's table (else refused); its bad rows are set aside when a command reads it
        _, rejects = screen(frame, url, labelled=True)
        for line in rejects.summary_lines(name):
            out.write(f"{line}\n")
        partial.replace(target)
    except (urllib.error.URLError, TimeoutError) as exc:
        raise DataValidationError(f"{url}: download failed ({exc})") from None
    finally:
        partial.unlink(missing_ok=True)
    return target
