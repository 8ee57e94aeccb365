"""Test helpers other test modules import: tiny models with hand-computable geometry, and the
offline ``TORCH_HOME`` filled with torchvision's MobileNetV2 ImageNet weights."""
