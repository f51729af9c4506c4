"""Fine-tuning StyleGAN2 on talking-head footage: face-crop datasets (`live gan dataset`) and
training (`live gan train`)."""
