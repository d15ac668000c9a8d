"""City of Melbourne open data: hourly pedestrian counts and sensor locations."""
