"""The library behind the commands at the top of the repository."""
