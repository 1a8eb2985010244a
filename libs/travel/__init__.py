"""Travel: great-circle geography, route optimisation and trip budgets (pure)."""
