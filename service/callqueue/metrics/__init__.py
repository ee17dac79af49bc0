"""Metrics in the Prometheus/OpenMetrics exposition format, served at GET /metrics by the queue API role.

Two kinds, kept apart on purpose:
- what this process did (calls enqueued and dispatched, agent starts, outbound requests, result deliveries):
  per-process counters and histograms in `process.py`, summed across instances by whoever reads them;
- what the queue as a whole holds (depth, oldest age, in flight, pace, outbox, dead letters, Plivo budget) and
  what any instance of either role did to a call (outcomes, time from dial to outcome, Plivo callbacks): read
  from Redis at scrape time (`queue.py`), so every instance reports the same truth.
"""
