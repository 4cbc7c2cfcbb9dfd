"""The device lab: a TOML plan of jobs (`suite.lab.plan`) run across many phones."""
