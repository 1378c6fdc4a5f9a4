"""Reference sampling (GAFF MD) and bond-length augmentation."""
