"""One router per resource; each stays thin and calls services."""
