"""Locust load-testing kit (tritonkit.loadtest)."""
