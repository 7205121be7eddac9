"""Built-in selection plugins."""
