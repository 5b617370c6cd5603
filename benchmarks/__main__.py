"""``python -m benchmarks [name ...]``: run the benchmarks (all by default)."""

from benchmarks.run import main

raise SystemExit(main())
