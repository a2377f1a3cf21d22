"""The web app: server-rendered pages for readers and admins, on the services the API uses.

`install(app)` (called by `api.app.create_app`) adds the pages, their static files and the
offline API docs to the one FastAPI app; nothing here calls the HTTP API.
"""
