"""Live adapter process for the Eternal Engine (Bybit V5 through pybit, order state machine, reconciliation).

Sub-packages are imported explicitly (``live.db`` for persistence); importing ``live`` itself is cheap and pulls
in neither SQLAlchemy nor pybit.
"""
