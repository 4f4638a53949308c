"""kguest's self-tests: pytester drives inner pytest sessions (test_plugin.py)."""

pytest_plugins = ["pytester"]
