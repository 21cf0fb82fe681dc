"""Tests of the node composition and the session manager."""
