"""Infrastructure of the call queue: one Terraform stack per file in `environments/`, synthesized with cdktf.

Node 20 is past its end of life, so jsii prints a banner on every import of the provider bindings; both variables
below silence it (the first for the deprecation phase, the second for the end-of-life phase, by major version).
They are set here, before any jsii import, so every entry point (main, bench, tests) gets them.
"""

import os

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
