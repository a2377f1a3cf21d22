"""The HTTP edge: app factory, dependencies, middleware, error handlers, routers."""
