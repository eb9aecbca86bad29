from tests.limits.conftest import private_redis  # noqa: F401  (a redis-server of the test's own)
