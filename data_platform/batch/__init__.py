"""Sources: what is specific to each feed (Qlik Replicate, DMAP, Kafka)."""
