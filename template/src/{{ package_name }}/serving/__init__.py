"""Online serving: the registry's champion and challenger behind a FastAPI app."""
