"""Local stand-ins for the sources' services: the DMAP and pedestrian APIs, a Kafka broker."""
