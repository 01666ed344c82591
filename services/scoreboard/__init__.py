"""The live scoreboard: Superset over Trino as code, a terminal table, pipeline health, the demo."""
