"""Developer-side tools: the local stack, the simulators of Plivo, the agent and the backend, a throwaway Redis.

Nothing here is installed in the service image.
"""
