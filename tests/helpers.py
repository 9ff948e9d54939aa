"""Shared test settings."""

# Governance far out of the way, no DCA, no portfolio-level position cap: isolates an engine's own mechanics.
UNGOVERNED = {
    "portfolio.dca_amount": 0.0,
    "risk.breaker_levels": [0.9, 0.95, 0.97, 0.99],
    "risk.recovery_hysteresis": 0.0,
    "risk.daily_loss_limit": 0.9,
    "risk.weekly_loss_limit": 0.95,
    "risk.max_position_pct": 2.0,
    "risk.min_confidence": 0.0,
    "risk.kelly_min_trades": 1_000_000,
}
