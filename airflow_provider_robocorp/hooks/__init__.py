"""Hooks of the Robocorp provider."""
