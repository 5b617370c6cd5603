"""Monitoring, batch scoring and gated promotion of the registry's models."""
