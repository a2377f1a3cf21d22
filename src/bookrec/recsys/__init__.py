"""The maths of recommendation, pure: numpy/scipy only, nothing from the rest of bookrec."""
