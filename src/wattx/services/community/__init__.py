"""How the community governs itself and its sites: governance, node incentives and the edge
nodes' control plane."""
