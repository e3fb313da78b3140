"""Sample libraries from separated songs: bar loops, drum one-shots, a searchable index."""
