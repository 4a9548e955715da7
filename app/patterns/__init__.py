"""Patterns: the same person in several incidents, and low-level concerns about one member of
staff (KCSIE asks that these be kept so that a pattern can be seen)."""
