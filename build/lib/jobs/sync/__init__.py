"""Moving files: the rclone step (rclone), and the ACC bridge that lets rclone see an ACC project (acc/)."""
