"""The vendor's tap events on Kafka: consumed into files, loaded exactly once per offset."""
