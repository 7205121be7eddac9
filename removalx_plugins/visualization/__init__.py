"""Built-in visualization plugins."""
