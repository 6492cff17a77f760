"""Who is calling: accounts and admission, access tokens, wallet sign-in."""
