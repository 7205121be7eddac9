"""Built-in metric plugins (stage ``metric``), one module per metric family."""
