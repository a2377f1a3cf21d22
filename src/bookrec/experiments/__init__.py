"""A/B experiments on the personal lists: variants, sticky assignment, exposures, analysis."""
