"""HTTP layer: Tornado handlers. Each module ends with ``default_handlers``."""
