"""Benchmark suites, records and the leaderboard: results that compare across experiments and software versions."""
