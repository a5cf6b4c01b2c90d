raise RuntimeError("weights not found at /models/x")
