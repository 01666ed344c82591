"""The local stack: real Kafka, a Confluent-compatible registry, PostgreSQL and Trino as processes."""
