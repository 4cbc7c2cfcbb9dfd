"""A copy of devices/socs.csv shipped inside the package (wheel installs); `python -m suite.socs --sync` refreshes it."""
