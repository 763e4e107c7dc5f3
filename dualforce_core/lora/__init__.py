"""LoRA adapters on a trained DualForce (peft): personalise one identity without touching the base weights.

`config` (the `lora` config section), `adapter` (inject, freeze, switch, scale), `files` (the PEFT adapter
directory and its base-checkpoint check), `merge` (fold an adapter into a plain checkpoint). Import from
those modules: this package file stays empty so the config schema can import `config` without torch or peft.
"""
