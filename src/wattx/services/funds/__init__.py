"""A participant's money and energy: the wallet, custodial keys, deposit requests and
monthly statements."""
