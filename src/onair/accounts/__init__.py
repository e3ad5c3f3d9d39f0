"""Users known by their token, their roles, credit balances and plans (see docs/auth.md)."""
