"""The page routes: one module per audience (readers, admins) and the API docs."""
