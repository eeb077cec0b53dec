pytest_plugins = ["tests.fixtures.cast", "tests.fixtures.api"]
