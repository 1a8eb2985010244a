"""jobctl: the command line and Python client for the durable job system."""
