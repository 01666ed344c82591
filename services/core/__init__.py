"""The pure grading core: events, rubric, engine and scoring. No I/O lives here."""
