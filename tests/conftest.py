pytest_plugins = [
    "tests.fixtures.cast",
    "tests.fixtures.api",
    "tests.fixtures.processes",
    "tests.fixtures.http",
    "tests.fixtures.redbeat",
    "tests.fixtures.rclone",
    "tests.fixtures.leaks",
    "tests.fixtures.runs",
    "tests.fixtures.canary",
    "tests.fixtures.dns",
    "tests.fixtures.servers",
    "tests.fixtures.s3",
]
