"""`atoma-operator api`: the daemon's HTTP endpoints, backed by the resources."""
