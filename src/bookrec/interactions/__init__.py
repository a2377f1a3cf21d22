"""What readers did with books: ratings, the to-read shelf, events, and data set imports."""
