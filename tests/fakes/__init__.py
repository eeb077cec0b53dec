"""Loopback fakes of third-party services, so tests can drive real clients (rclone) with no internet."""
