"""Gateway Config: schema, validation messages, compilation to frozen runtime objects."""
