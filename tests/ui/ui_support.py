"""Constants the UI tests share (a module of its own: `conftest` is a name every test folder
has, so importing from it picks whichever folder loaded first)."""

TOKEN = "t0k-secret-42"
