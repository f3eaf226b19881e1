"""Settings shared by the independent-client checks; scripts/tccli-check sets the environment."""

import os
import unittest

DEMO_SECRET_ID = "sandbox-secret-id"
DEMO_SECRET_KEY = "sandbox-secret-key"
WIDE_WINDOW = {"StartTime": "2000-01-01 00:00:00", "EndTime": "2099-12-31 23:59:59"}


def endpoint(var):
    """host:port of a sandbox started by scripts/tccli-check; fails loudly when run without it."""
    value = os.environ.get(var)
    if not value:
        raise unittest.SkipTest(f"{var} is not set: run these checks through scripts/tccli-check")
    return value
