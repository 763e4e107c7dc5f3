"""Feature extractors that turn `clips` rows into the model's inputs: HuBERT audio features, LivePortrait
motion, FLAME parameters and Wan-VAE latents, each into its own Lance table."""
