"""HTTP clients of the outside systems: the agent, the backend, Plivo, and Google ID tokens for Cloud Run."""
