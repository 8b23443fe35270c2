"""Billing: plans, subscriptions (Stripe or the local ledger), metered minutes, usage and history."""
