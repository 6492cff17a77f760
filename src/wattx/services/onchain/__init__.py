"""What is recorded on chain: the chain worker, settlement and minting outboxes, the chain
node's history check, the ledger views and token retirement."""
