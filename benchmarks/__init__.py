"""Benchmarks of the template against what a user would otherwise pick (issue 8).

Run them all with ``python -m benchmarks`` or one with ``python -m benchmarks generation``;
see docs/benchmarks.md. Nothing here is a test assertion: results are medians and ratios.
"""
