"""Built-in removalx plugins (import package ``removalx_plugins``)."""
