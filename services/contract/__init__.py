"""The event contract: Avro schemas, topics, the wire format, the JSON Lines form and dead letters.

Every producer and consumer of proctor events goes through this package, so a record that
one side writes is always one the other side can read, or a dead letter saying why not.
"""
