"""Process roles: the engine host, its send lines, and the embedded all-in-one runtime."""
