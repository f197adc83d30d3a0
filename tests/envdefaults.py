"""Loaded by pytest before Django: test-only defaults, so that plain `pytest` works too."""

import os

os.environ.setdefault("SECRET_KEY", "ledgerguard-test-only-insecure-key-do-not-use-in-production")
