"""Call tracking: callbacks and agent events first, Plivo and agent polling second, one scheduler for all calls."""
