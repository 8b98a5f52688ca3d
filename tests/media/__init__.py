"""Tests of the media core's insides by their own names, each module beside what it tests:
tests/media/store/test_options.py tests avenue/media/store/options.py (docs/contributing.md)."""
