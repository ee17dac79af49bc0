"""Local stand-ins for Plivo's REST API, the pipecat voice agent and the results backend.

Each is a FastAPI app made by a factory (`create_plivo_app`, `create_agent_app`, `create_backend_app`),
scriptable per call over `/_sim/...` control endpoints, and startable in-process with `local.simulators.server.running`.
See docs/simulators.md.
"""
