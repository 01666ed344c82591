"""Offline drivers of the grading core: replay and regrade of recorded exams."""
