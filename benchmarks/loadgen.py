"""A bounded async load generator: ``python loadgen.py URL BODY_FILE CONCURRENCY SECONDS``.

Runs in its own process (the project's venv, which has httpx) so it does not share an event
loop or a GIL with the server. ``CONCURRENCY`` workers each send the same POST back to back for
``SECONDS`` (after a short warm-up); prints one JSON line: requests, errors, req/s, p50/p99 ms.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx

WARMUP = 0.5  # seconds of requests not counted


async def worker(
    client: httpx.AsyncClient, url: str, body: bytes, start: float, end: float, out: list[float]
) -> int:
    errors = 0
    headers = {"content-type": "application/json"}
    while (now := time.perf_counter()) < end:
        response = await client.post(url, content=body, headers=headers)
        done = time.perf_counter()
        if response.status_code != 200:
            errors += 1
        elif now >= start:
            out.append(done - now)
    return errors


async def main(url: str, body: bytes, concurrency: int, seconds: float) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        start = time.perf_counter() + WARMUP
        end = start + seconds
        tasks = [worker(client, url, body, start, end, latencies) for _ in range(concurrency)]
        errors = sum(await asyncio.gather(*tasks))
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / seconds,
        "p50_ms": pct(0.50) if latencies else float("nan"),
        "p99_ms": pct(0.99) if latencies else float("nan"),
    }


if __name__ == "__main__":
    url, path, concurrency, seconds = sys.argv[1:5]
    with open(path, "rb") as f:
        payload = f.read()
    print(json.dumps(asyncio.run(main(url, payload, int(concurrency), float(seconds)))))
