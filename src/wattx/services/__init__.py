"""Use cases, one service object per area; routers, the CLI and the simulator call these."""
