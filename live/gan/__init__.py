"""Fine-tuning StyleGAN2 on talking-head footage: datasets of face crops (training: to come)."""
