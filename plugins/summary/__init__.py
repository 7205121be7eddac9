"""Built-in summary plugins."""
