// AuthCore unit tests.
