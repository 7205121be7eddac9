"""Placeholder: being written (issue 25)."""
