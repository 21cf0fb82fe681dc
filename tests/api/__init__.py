"""Tests of the api package (CLI, daemon, HTTP API)."""
