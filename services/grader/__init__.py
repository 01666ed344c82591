"""The grader service: the grading core run live over Kafka, landing every change in Iceberg.

Modules by stage: ``settings`` (configuration), ``rows`` (the transition row and table
schema), ``offsets`` (source offsets kept in Iceberg snapshots), ``sink`` (batched,
exactly-once Iceberg commits), ``views`` and ``maintenance`` (Trino SQL), ``record``
(the per-platform state kept in the Faust table), ``app`` (Faust agents), ``telemetry``.
"""
