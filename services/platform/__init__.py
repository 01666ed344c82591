"""Real systems of a candidate's platform, started as local processes for tests and rehearsals."""
