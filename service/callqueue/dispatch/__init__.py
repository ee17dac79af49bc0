"""Dispatch: paced workers that start queued calls with the agent, and the reconciler of unknown dispatches."""
