"""miner: models, data and features in; explanatory graphs learned and inferred out."""
