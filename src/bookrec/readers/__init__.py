"""Readers and what they did: ratings, the to-read shelf, events, and the activity version
that every change of a reader's ratings or shelf moves."""
