"""Pytest fixtures that start real systems of a candidate's platform."""
