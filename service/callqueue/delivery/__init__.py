"""Durable, at-least-once delivery of call results to the backend, from the Redis outbox."""
