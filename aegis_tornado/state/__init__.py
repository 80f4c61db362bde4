"""State shared by several replicas or worker processes (``STATE_URL``); see docs/SCALING.md."""
