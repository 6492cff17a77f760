# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title Role and status codes shared by the wattx contracts
"""

ROLE_PROSUMER: constant(uint8) = 1
ROLE_CONSUMER: constant(uint8) = 2
ROLE_NODE_OPERATOR: constant(uint8) = 3
ROLE_OPERATOR: constant(uint8) = 4
ROLE_AUDITOR: constant(uint8) = 5

STATUS_ACTIVE: constant(uint8) = 1
STATUS_SUSPENDED: constant(uint8) = 2
