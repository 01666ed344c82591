"""A cohort of exams in the roster and the proctor's actions on it (start, end a part,
extend, inject a fault, end), each a signed control event."""
