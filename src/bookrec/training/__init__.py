"""Building training data from the database, training models, and the model registry."""
