"""The HTTP edge: thin handlers over `service`, one error middleware, pure header helpers."""
