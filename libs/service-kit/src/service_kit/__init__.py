"""HTTP plumbing shared by the services: problem details, request ids and JSON logs.

Both services depend on this package; neither depends on the other.
"""
