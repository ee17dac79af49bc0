"""Operator tools: `diagnose` (is this deployment configured and healthy?) and `connectivity` (can it reach its peers?).

Both read the same settings as the service, give every check a verdict (ok / warn / fail) with a one-line remedy,
and never end in a traceback: a check that raises or hangs becomes a failed verdict.
"""
