"""Tests of the CI tooling (.ci/, Makefile helpers, the no-skips plugin)."""
