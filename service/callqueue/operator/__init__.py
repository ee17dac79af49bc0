"""The operator page: one read-only page served by the queue API role, its JSON, and the samples it charts."""
